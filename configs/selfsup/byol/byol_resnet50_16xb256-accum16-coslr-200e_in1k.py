_base_ = [
    '../../_base_/schedules/lars_coslr-200e_in1k.py',
    '../../_base_/default_runtime.py',
]

# optimizer: 16 accumulated micro-batches per update
update_interval = 16

# additional hooks (the target-network EMA, stepped once per update as upstream;
# not an optimiser setting)
custom_hooks = [
    dict(type='BYOLHook', end_momentum=1., update_interval=update_interval)
]

optimizer = dict(
    type='LARS',
    lr=4.8,
    momentum=0.9,
    weight_decay=1e-6,
    paramwise_options={
        '(bn|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0., lars_exclude=True),
        'bias': dict(weight_decay=0., lars_exclude=True)
    })
optimizer_config = dict(update_interval=update_interval)
