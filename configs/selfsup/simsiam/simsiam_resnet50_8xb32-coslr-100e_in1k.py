_base_ = [
    '../../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../../_base_/default_runtime.py',
]

# set base learning rate
lr = 0.05

# additional hooks: the predictor keeps its lr
custom_hooks = [
    dict(type='SimSiamHook', priority='HIGH', fix_pred_lr=True, lr=lr, adjust_by_epoch=False)
]

# optimizer
optimizer = dict(
    lr=lr, paramwise_options={'predictor': dict(fix_lr=True)})

# runtime settings
runner = dict(type='EpochBasedRunner', max_epochs=100)
