# SimSiam, ResNet-50, 8 GPUs x 32 images, 100 epochs: the optimisation part of MMPretrain
# 1.2.0's configs/simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py (its
# ../_base_/schedules/imagenet_sgd_coslr_200e.py is overridden key by key;
# ../_base_/default_runtime.py gives default_scope). Numbers as upstream; the model keeps what
# the optimizer reads (the algorithm and the backbone).

default_scope = 'mmpretrain'

model = dict(type='SimSiam', backbone=dict(type='ResNet', depth=50))

# optimizer
# set base learning rate
lr = 0.05
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=lr, weight_decay=1e-4, momentum=0.9),
    paramwise_cfg=dict(custom_keys={'predictor': dict(fix_lr=True)}))

# learning rate scheduler
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=100, by_epoch=True, begin=0, end=100)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)

# additional hooks: the predictor's lr is set back to `lr` at every epoch start, so it stays
# fixed while the cosine anneals the others
custom_hooks = [
    dict(type='SimSiamHook', priority='HIGH', fix_pred_lr=True, lr=lr)
]
