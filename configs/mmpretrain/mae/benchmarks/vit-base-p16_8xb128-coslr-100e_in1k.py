# Fine-tuning a pre-trained (MAE) ViT-Base/16 on ImageNet, 8 GPUs x 128 images, 100 epochs,
# layer-wise lr decay 0.65: the optimisation part of MMPretrain 1.2.0's
# configs/mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py, merged with its bases
# ../../_base_/schedules/imagenet_bs1024_adamw_swin.py (paramwise_cfg, eps, val_interval) and
# ../../_base_/default_runtime.py (default_scope). Numbers as upstream; the model keeps what
# the layer-decay constructor reads (the classifier and the backbone's type and arch: 12
# layers, so 14 lr scales from 0.65**13 to 1).

default_scope = 'mmpretrain'

model = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', arch='base'))

# optimizer wrapper: AdamW; MMPretrain's layer-decay constructor gives layer i of n the lr
# times 0.65**(n + 1 - i); no weight decay on norm layers, biases, 1-d parameters and tokens
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW',
        lr=2e-3,
        weight_decay=0.05,
        eps=1e-8,
        betas=(0.9, 0.999)),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.absolute_pos_embed': dict(decay_mult=0.0),
            '.relative_position_bias_table': dict(decay_mult=0.0),
            '.ln': dict(decay_mult=0.0),
            '.bias': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0)
        },
        layer_decay_rate=0.65))

# learning rate scheduler
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=95,
        by_epoch=True,
        begin=5,
        end=100,
        eta_min=1e-6,
        convert_to_iter_based=True)
]

# runtime settings
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)

# NOTE: `auto_scale_lr` is for automatically scaling LR,
# based on the actual training batch size (not enabled).
auto_scale_lr = dict(base_batch_size=1024)
