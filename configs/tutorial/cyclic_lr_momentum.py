# The MMSelfSup tutorial's cyclic lr with cyclic momentum (by iteration).
optimizer = dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4)
optimizer_config = dict()
lr_config = dict(
    policy='cyclic',
    target_ratio=(10, 1e-4),
    cyclic_times=1,
    step_ratio_up=0.4)
momentum_config = dict(
    policy='cyclic',
    target_ratio=(0.85 / 0.95, 1),
    cyclic_times=1,
    step_ratio_up=0.4)
runner = dict(type='EpochBasedRunner', max_epochs=20)
