_base_ = [
    '../../_base_/schedules/lars_coslr-200e_in1k.py',
    '../../_base_/default_runtime.py',
]

# the prototypes are frozen for the first epoch (5005 iterations)
optimizer = dict(
    type='LARS',
    lr=0.6,
    momentum=0.9,
    weight_decay=1e-6,
    paramwise_options={
        '(bn|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0., lars_exclude=True),
        'bias': dict(weight_decay=0., lars_exclude=True)
    })
optimizer_config = dict(frozen_layers_cfg=dict(prototypes=5005))

# learning policy
lr_config = dict(
    _delete_=True,
    policy='CosineAnnealing',
    min_lr=6e-4,
    warmup='linear',
    warmup_iters=10,
    warmup_ratio=1e-4,
    warmup_by_epoch=True)
