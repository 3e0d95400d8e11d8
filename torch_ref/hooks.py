"""The optimizer hook and the SimSiam hook, as MMSelfSup 0.x / mmcv 1.7 run them.

``OptimizerHook`` here covers DistOptimizerHook (``update_interval``, frozen
layers, grad_clip) with mmcv's GradientCumulativeOptimizerHook remainder rule,
and GradAccumFp16OptimizerHook (``loss_scale``: always ``/k``, no flush) with a
torch ``GradScaler``. ``backward`` plays the part of ``loss.backward()`` on the
loss divided (and scaled) as the hook divides it.
"""

from __future__ import annotations

import torch
from torch.nn.utils import clip_grad_norm_

PRIORITY = dict(HIGHEST=0, VERY_HIGH=10, HIGH=30, ABOVE_NORMAL=40, NORMAL=50, BELOW_NORMAL=60,
                LOW=70, VERY_LOW=90, LOWEST=100)


class OptimizerHook:
    priority = PRIORITY["ABOVE_NORMAL"]

    def __init__(self, named_parameters, update_interval=1, grad_clip=None,
                 frozen_layers_cfg=None, loss_scale=None):
        self.named = list(named_parameters)
        self.k = update_interval
        self.grad_clip = grad_clip
        self.frozen = dict(frozen_layers_cfg or {})
        self.loss_scale = loss_scale
        self.scaler = None
        self.static_scale = None
        self.grad_norms = []

    def before_run(self, runner):
        self.divisible = runner.max_iters // self.k * self.k
        self.remainder = runner.max_iters - self.divisible
        if self.loss_scale is not None:
            device = self.named[0][1].device.type
            if self.loss_scale == "dynamic":
                self.scaler = torch.amp.GradScaler(device)
            elif isinstance(self.loss_scale, (int, float)):
                # mmcv: a static scale is re-imposed by update(scale) after every step
                self.scaler = torch.amp.GradScaler(device, init_scale=self.loss_scale)
                self.static_scale = float(self.loss_scale)
            else:
                self.scaler = torch.amp.GradScaler(device, **self.loss_scale)
        runner.optimizer.zero_grad()

    def backward(self, runner, grads):
        if self.scaler is not None or runner.iter < self.divisible:
            factor = self.k
        else:
            factor = self.remainder
        if self.scaler is not None:
            # scaler.scale(loss / k).backward(): the loss's gradient is scale / k (one
            # float32 division), which multiplies every parameter's gradient
            device = self.named[0][1].device
            one = torch.ones((), dtype=torch.float32, device=device)
            multiplier = self.scaler.scale(one) / factor
        for name, p in self.named:
            g = grads[name] * multiplier if self.scaler is not None else grads[name] / factor
            p.grad = g.clone() if p.grad is None else p.grad + g

    def after_train_iter(self, runner):
        every = (runner.iter + 1) % self.k == 0
        last = self.scaler is None and runner.iter == runner.max_iters - 1
        if not (every or last):
            return
        for layer, iters in self.frozen.items():
            if runner.iter < iters:
                for name, p in self.named:
                    if layer in name:
                        p.grad = None
        if self.scaler is not None:
            self.scaler.unscale_(runner.optimizer)
        if self.grad_clip is not None:
            params = [p for _, p in self.named if p.grad is not None]
            if params:
                self.grad_norms.append(float(clip_grad_norm_(params, **self.grad_clip)))
        if self.scaler is not None:
            self.scaler.step(runner.optimizer)
            self.scaler.update(self.static_scale)
        else:
            runner.optimizer.step()
        runner.optimizer.zero_grad()

    def before_train_epoch(self, runner):
        pass

    def before_train_iter(self, runner):
        pass


class SimSiamHook:
    def __init__(self, fix_pred_lr, lr, adjust_by_epoch=True, priority="NORMAL"):
        self.fix_pred_lr, self.lr, self.adjust_by_epoch = fix_pred_lr, lr, adjust_by_epoch
        self.priority = PRIORITY.get(priority, priority)

    def _fix(self, runner):
        if self.fix_pred_lr:
            for group in runner.optimizer.param_groups:
                if group.get("fix_lr", False):
                    group["lr"] = self.lr

    def before_run(self, runner):
        pass

    def before_train_epoch(self, runner):
        self._fix(runner)

    def before_train_iter(self, runner):
        if not self.adjust_by_epoch:
            self._fix(runner)

    def after_train_iter(self, runner):
        pass
