_base_ = [
    '../../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../../_base_/default_runtime.py',
]
