_base_ = [
    '../../_base_/schedules/adamw_coslr-300e_in1k.py',
    '../../_base_/default_runtime.py',
]

# optimizer: no weight decay for norms, biases and the embeddings
optimizer = dict(
    lr=1.5e-4 * 4096 / 256,
    betas=(0.9, 0.95),
    weight_decay=0.05,
    paramwise_options={
        'ln': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'pos_embed': dict(weight_decay=0.),
        'mask_token': dict(weight_decay=0.),
        'cls_token': dict(weight_decay=0.)
    })
optimizer_config = dict()

# learning policy
lr_config = dict(
    policy='StepFixCosineAnnealing',
    min_lr=0.0,
    warmup='linear',
    warmup_iters=40,
    warmup_ratio=1e-4,
    warmup_by_epoch=True,
    by_epoch=False)

# runtime settings
runner = dict(max_epochs=400)
