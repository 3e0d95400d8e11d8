_base_ = [
    '../../_base_/schedules/adamw_coslr-300e_in1k.py',
    '../../_base_/default_runtime.py',
]

# optimizer
optimizer = dict(
    type='AdamW',
    lr=2e-4 * 2048 / 512,
    betas=(0.9, 0.999),
    eps=1e-8,
    paramwise_options={
        'norm': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'absolute_pos_embed': dict(weight_decay=0.),
        'relative_position_bias_table': dict(weight_decay=0.)
    })

# clip gradient
optimizer_config = dict(grad_clip=dict(max_norm=5.0))

# learning policy: warmup counted in iterations
lr_config = dict(
    policy='CosineAnnealing',
    min_lr=1e-5 * 2048 / 512,
    warmup='linear',
    warmup_iters=10 * 1252,
    warmup_ratio=1e-6 / 2e-4,
    warmup_by_epoch=False,
    by_epoch=False)

# runtime settings
runner = dict(max_epochs=100)
