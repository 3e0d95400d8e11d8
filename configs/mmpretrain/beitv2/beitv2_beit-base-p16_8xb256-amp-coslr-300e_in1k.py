# BEiT v2, BEiT-Base/16, 8 GPUs x 256 images, mixed precision, 300 epochs: the optimisation
# part of MMPretrain 1.2.0's configs/beitv2/beitv2_beit-base-p16_8xb256-amp-coslr-300e_in1k.py
# (default_scope from its base ../_base_/default_runtime.py). Numbers as upstream; the model
# keeps what the optimizer reads (the algorithm and the backbone).

default_scope = 'mmpretrain'

model = dict(type='BEiT', backbone=dict(type='BEiTPretrainViT', arch='base'))

# optimizer wrapper: AdamW, gradient norm clipped at 3 (after unscaling)
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    # betas: (0.9, 0.98) for 300 epochs and (0.9, 0.999) for 1600 epochs.
    optimizer=dict(
        type='AdamW', lr=1.5e-3, betas=(0.9, 0.98), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(
        custom_keys={
            # the following configurations are designed for BEiT
            '.ln': dict(decay_mult=0.0),
            '.bias': dict(decay_mult=0.0),
            'q_bias': dict(decay_mult=0.0),
            'v_bias': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
            '.gamma': dict(decay_mult=0.0),
        }))

# learning rate scheduler
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=10,
        end=300,
        convert_to_iter_based=True)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300)

# NOTE: `auto_scale_lr` is for automatically scaling LR
# based on the actual training batch size (not enabled).
auto_scale_lr = dict(base_batch_size=2048)
