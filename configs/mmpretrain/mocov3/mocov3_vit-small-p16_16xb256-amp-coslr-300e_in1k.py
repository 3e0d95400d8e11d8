# MoCo v3, ViT-Small/16, 16 GPUs x 256 images, mixed precision, 300 epochs: the optimisation
# part of MMPretrain 1.2.0's configs/mocov3/mocov3_vit-small-p16_16xb256-amp-coslr-300e_in1k.py
# (default_scope from its base ../_base_/default_runtime.py). Numbers as upstream; the model
# keeps what the optimizer reads (the algorithm and the backbone).

default_scope = 'mmpretrain'

model = dict(type='MoCoV3', backbone=dict(type='MoCoV3ViT', arch='mocov3-small'))

# optimizer: AdamW in ONE param group (no paramwise_cfg), dynamic loss scale
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=2.4e-3, weight_decay=0.1))

# learning rate scheduler
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=40,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=260,
        by_epoch=True,
        begin=40,
        end=300,
        convert_to_iter_based=True)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300)

# NOTE: `auto_scale_lr` is for automatically scaling LR
# based on the actual training batch size (not enabled).
auto_scale_lr = dict(base_batch_size=4096)
