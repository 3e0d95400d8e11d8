_base_ = [
    '../../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../../_base_/default_runtime.py',
]

# only keeps the latest 3 checkpoints
checkpoint_config = dict(interval=10, max_keep_ckpts=3)
