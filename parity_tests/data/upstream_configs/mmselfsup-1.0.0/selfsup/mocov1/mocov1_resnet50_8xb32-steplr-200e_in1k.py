_base_ = [
    '../_base_/models/mocov1.py',
    '../_base_/datasets/imagenet_mocov1.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
