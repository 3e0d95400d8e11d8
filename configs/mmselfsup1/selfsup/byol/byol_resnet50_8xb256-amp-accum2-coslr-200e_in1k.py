# BYOL, ResNet-50, 8 GPUs x 256 images, mixed precision, 2 accumulated micro-batches per update,
# 200 epochs: the optimisation part of MMSelfSup 1.0.0's
# configs/selfsup/byol/byol_resnet50_8xb256-amp-accum2-coslr-200e_in1k.py, merged with its
# bases ../_base_/schedules/lars_coslr-200e_in1k.py and ../_base_/default_runtime.py
# (default_scope). Numbers as upstream; the model keeps what the optimizer reads (the
# algorithm, for `train`, and the backbone). BYOL's target network is updated by the model
# (not by a hook) in MMSelfSup 1.x.

default_scope = 'mmselfsup'

model = dict(type='BYOL', backbone=dict(type='ResNet', depth=50))

# optimizer: LARS under AMP with a static loss scale of 512 (non-finite steps are still
# skipped), one update per 2 iterations
optimizer = dict(type='LARS', lr=4.8, momentum=0.9, weight_decay=1e-6)
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale=512.,
    optimizer=optimizer,
    accumulative_counts=2,
    paramwise_cfg=dict(
        custom_keys={
            'bn': dict(decay_mult=0, lars_exclude=True),
            'bias': dict(decay_mult=0, lars_exclude=True),
            # bn layer in ResNet block downsample module
            'downsample.1': dict(decay_mult=0, lars_exclude=True),
        }),
)

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
        type='CosineAnnealingLR', T_max=190, by_epoch=True, begin=10, end=200)
]

# runtime settings
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
