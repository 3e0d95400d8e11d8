"""MMSelfSup 0.x's LARS as a torch.optim.Optimizer (reference implementation).

Per tensor: ``local_lr = eta*||p|| / (||g|| + wd*||p|| + eps)`` when both norms are
non-zero and the group is not ``lars_exclude``, else 1; ``d = (g + wd*p) * local_lr
* lr``; momentum buffer ``b = d`` at the first step, then ``m*b + (1-dampening)*d``;
nesterov ``d + m*b`` else ``b``; ``p -= d``.
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import Optimizer, required


class LARS(Optimizer):
    def __init__(self, params, lr=required, momentum=0, weight_decay=0, dampening=0, eta=0.001,
                 nesterov=False, eps=1e-8):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0 or weight_decay < 0.0:
            raise ValueError("Invalid momentum or weight_decay")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, eta=eta)
        self.eps = eps  # upstream: one eps for all groups (a group's 'eps' key is ignored)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd, m, damp = group["weight_decay"], group["momentum"], group["dampening"]
            eta, nesterov, lr = group["eta"], group["nesterov"], group["lr"]
            exclude = group.get("lars_exclude", False)
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                if exclude:
                    local_lr = 1.0
                else:
                    w_norm = torch.norm(p).item()
                    g_norm = torch.norm(d_p).item()
                    if w_norm != 0 and g_norm != 0:
                        local_lr = eta * w_norm / (g_norm + wd * w_norm + self.eps)
                    else:
                        local_lr = 1.0
                d_p = d_p.add(p, alpha=wd).mul(local_lr * lr)
                if m != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = torch.clone(d_p).detach()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(m).add_(d_p, alpha=1 - damp)
                    d_p = d_p.add(buf, alpha=m) if nesterov else buf
                p.add_(-d_p)
        return loss
