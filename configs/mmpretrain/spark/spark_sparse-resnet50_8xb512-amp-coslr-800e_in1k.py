# SparK, sparse ResNet-50, 8 GPUs x 512 images, mixed precision, 800 epochs: the optimisation
# part of MMPretrain 1.2.0's configs/spark/spark_sparse-resnet50_8xb512-amp-coslr-800e_in1k.py
# (default_scope from its base ../_base_/default_runtime.py). Numbers as upstream; the model
# keeps what the optimizer reads (the algorithm and the backbone).

default_scope = 'mmpretrain'

model = dict(type='SparK', backbone=dict(type='SparseResNet', depth=50))

# optimizer wrapper: Lamb, gradient norm clipped at 5 (after unscaling); no weight decay on
# biases, 1-d parameters and the mask token
optimizer = dict(
    type='Lamb', lr=2e-4 * 4096 / 512, betas=(0.9, 0.95), weight_decay=0.04)
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=optimizer,
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            'mask_token': dict(decay_mult=0.),
        }))

# learning rate scheduler; the weight decay rises from 0.04 to 0.2 along a cosine
# (MMPretrain's CosineAnnealingWeightDecay; groups with no decay keep none)
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
        T_max=760,
        by_epoch=True,
        begin=40,
        end=800,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingWeightDecay',
        eta_min=0.2,
        T_max=800,
        by_epoch=True,
        begin=0,
        end=800,
        convert_to_iter_based=True)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=800)
