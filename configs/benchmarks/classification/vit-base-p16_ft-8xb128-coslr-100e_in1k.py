_base_ = ['../../_base_/default_runtime.py']

# optimizer: layer-wise lr decay 0.65 over the ViT blocks
optimizer = dict(
    type='AdamW',
    lr=1e-3 * 1024 / 256,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    eps=1e-8,
    model_type='vit',
    layer_decay=0.65,
    constructor='TransformerFinetuneConstructor',
    paramwise_options={
        '(bn|ln|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'pos_embed': dict(weight_decay=0.),
        'cls_token': dict(weight_decay=0.)
    })
optimizer_config = dict(grad_clip=dict(max_norm=5.0))

# learning policy
lr_config = dict(
    policy='CosineAnnealing',
    min_lr=1e-6,
    warmup='linear',
    warmup_iters=5,
    warmup_ratio=1e-4,
    warmup_by_epoch=True,
    by_epoch=False)

# runtime settings
runner = dict(type='EpochBasedRunner', max_epochs=100)
