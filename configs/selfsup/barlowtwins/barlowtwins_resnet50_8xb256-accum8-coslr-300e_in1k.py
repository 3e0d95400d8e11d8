_base_ = [
    '../../_base_/schedules/lars_coslr-200e_in1k.py',
    '../../_base_/default_runtime.py',
]

# optimizer
optimizer = dict(
    type='LARS',
    lr=1.6,
    momentum=0.9,
    weight_decay=1e-6,
    paramwise_options={
        '(bn|gn)(\\d+)?.(weight|bias)':
        dict(weight_decay=0, lr_mult=0.024, lars_exclude=True),
        'bias': dict(weight_decay=0, lr_mult=0.024, lars_exclude=True),
    })
optimizer_config = dict(update_interval=8)

# runtime settings
runner = dict(type='EpochBasedRunner', max_epochs=300)
