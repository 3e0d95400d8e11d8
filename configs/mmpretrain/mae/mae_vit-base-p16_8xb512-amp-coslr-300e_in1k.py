# MAE, ViT-Base/16, 8 GPUs x 512 images, mixed precision, 300 epochs: the optimisation part of
# MMPretrain 1.2.0's configs/mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py (the model
# from its base ../_base_/models/mae_vit-base-p16.py, default_scope from
# ../_base_/default_runtime.py). Numbers as upstream; the model keeps what the optimizer reads
# (the algorithm, for `train`, and the backbone).

default_scope = 'mmpretrain'

model = dict(type='MAE', backbone=dict(type='MAEViT', arch='b'))

# optimizer wrapper: AdamW, no weight decay on norm layers, biases and tokens
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW',
        lr=1.5e-4 * 4096 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.)
        }))

# learning rate scheduler
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.0001,
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
