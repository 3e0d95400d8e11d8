_base_ = [
    '../../_base_/schedules/lars_coslr-200e_in1k.py',
    '../../_base_/default_runtime.py',
]

# optimizer: BN and bias parameters get no weight decay and no LARS adaptation
optimizer = dict(
    type='LARS',
    lr=0.3,
    momentum=0.9,
    weight_decay=1e-6,
    paramwise_options={
        '(bn|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0., lars_exclude=True),
        'bias': dict(weight_decay=0., lars_exclude=True)
    })

# runtime settings
checkpoint_config = dict(interval=10, max_keep_ckpts=3)
