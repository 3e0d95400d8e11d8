_base_ = ['../_base_/schedules/adamw_coslr-300e_in1k.py']

# mixed precision: dynamic loss scale (torch GradScaler defaults), 4 micro-steps per update
fp16 = dict(loss_scale='dynamic')
optimizer_config = dict(update_interval=4, grad_clip=dict(max_norm=10.0))
runner = dict(max_epochs=20)
