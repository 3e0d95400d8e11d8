_base_ = [
    '../../_base_/models/mixmim/mixmim_base.py',
    '../../_base_/datasets/imagenet_bs64_swin_224.py',
    '../../_base_/schedules/imagenet_bs256.py',
    '../../_base_/default_runtime.py'
]
