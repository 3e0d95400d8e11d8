# SimCLR, ResNet-50, 16 GPUs x 256 images, 200 epochs: the optimisation part of MMSelfSup
# 1.0.0's configs/selfsup/simclr/simclr_resnet50_16xb256-coslr-200e_in1k.py, merged with its
# bases simclr_resnet50_8xb32-coslr-200e_in1k.py, ../_base_/schedules/lars_coslr-200e_in1k.py
# and ../_base_/default_runtime.py (default_scope). Numbers as upstream; the model keeps what
# the optimizer reads (the algorithm, for `train`, and the backbone).

default_scope = 'mmselfsup'

model = dict(type='SimCLR', backbone=dict(type='ResNet', depth=50))

# optimizer: LARS; BN and bias parameters get no weight decay and no LARS adaptation
optimizer = dict(type='LARS', lr=4.8, weight_decay=1e-6, momentum=0.9)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    paramwise_cfg=dict(
        custom_keys={
            'bn': dict(decay_mult=0, lars_exclude=True),
            'bias': dict(decay_mult=0, lars_exclude=True),
            # bn layer in ResNet block downsample module
            'downsample.1': dict(decay_mult=0, lars_exclude=True),
        }))

# learning rate scheduler: 10 warmup epochs stepped per iteration, then a cosine stepped
# once per epoch
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR', T_max=190, by_epoch=True, begin=10, end=200)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
