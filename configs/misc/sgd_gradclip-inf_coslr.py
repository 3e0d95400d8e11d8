_base_ = ['../_base_/schedules/sgd_coslr-200e_in1k.py']

# clip by the largest absolute gradient entry
optimizer_config = dict(grad_clip=dict(max_norm=0.5, norm_type=float('inf')))
lr_config = dict(by_epoch=False)
runner = dict(max_epochs=20)
