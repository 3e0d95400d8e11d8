_base_ = ['../_base_/schedules/sgd_coslr-200e_in1k.py']

# 70 iterations in groups of 8: the last update averages the remaining 6
optimizer_config = dict(update_interval=8)
lr_config = dict(
    _delete_=True, policy='step', step=[40], gamma=0.5, warmup='exp', warmup_iters=20,
    warmup_ratio=0.01)
runner = dict(_delete_=True, type='IterBasedRunner', max_iters=70)
