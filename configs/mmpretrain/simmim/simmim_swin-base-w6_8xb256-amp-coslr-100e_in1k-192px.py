# SimMIM, Swin-Base (window 6), 8 GPUs x 256 images of 192 px, mixed precision, 100 epochs: the
# optimisation part of MMPretrain 1.2.0's
# configs/simmim/simmim_swin-base-w6_8xb256-amp-coslr-100e_in1k-192px.py (default_scope from
# its base ../_base_/default_runtime.py). Numbers as upstream; the model keeps what the
# optimizer reads (the algorithm and the backbone).

default_scope = 'mmpretrain'

model = dict(
    type='SimMIM', backbone=dict(type='SimMIMSwinTransformer', arch='base'))

# optimizer wrapper: AdamW, gradient norm clipped at 5 (after unscaling)
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=2e-4 * 2048 / 512,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        custom_keys={
            'norm': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.)
        }))

# learning rate scheduler
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6 / 2e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=90,
        eta_min=1e-5 * 2048 / 512,
        by_epoch=True,
        begin=10,
        end=100,
        convert_to_iter_based=True)
]

# runtime
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)

# NOTE: `auto_scale_lr` is for automatically scaling LR
# based on the actual training batch size (not enabled).
auto_scale_lr = dict(base_batch_size=2048)
