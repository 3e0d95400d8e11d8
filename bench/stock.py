"""The nearest stock optax chain for a config (variant c), and the eager torch run (d).

Stock optax (what an optax user would write; NOT numerically identical to the
config: optax.lars / MultiSteps / warmup schedules differ in details from
MMSelfSup, and by-epoch stairs are not modelled):

- schedule: ``optax.join_schedules([linear warmup, cosine_decay])`` per base lr;
- LARS: ``optax.lars`` with ``weight_decay_mask = trust_ratio_mask = not
  lars_exclude``; AdamW: ``optax.adamw`` with ``mask = weight_decay > 0``;
- several lr / weight-decay groups (layer decay): ``optax.multi_transform``, one
  inner optimizer per (lr, weight_decay) pair;
- ``grad_clip``: ``optax.clip_by_global_norm`` first; ``update_interval``:
  ``optax.MultiSteps``.

The torch side drives ``torch_ref.build`` (optimizer + hooks from the config for
named torch parameters) one micro-iteration at a time in mmcv's hook order;
``foreach=True`` selects torch.optim's multi-tensor kernels where the optimizer
has them (AdamW; MMSelfSup's LARS has none).
"""

from __future__ import annotations

import copy

import jax
import numpy as np
import optax
from fused import Recipe  # noqa: E402  (bench/ is on sys.path when run as a script)


def stock_schedule(recipe: Recipe, base: float):
    s = recipe.schedule
    max_iters = s.steps_per_epoch * s.max_epochs
    target = s.min_lr if s.min_lr is not None else base * s.min_lr_ratio
    alpha = target / base if base else 0.0
    w = s.warmup_iters
    if not w:
        return optax.cosine_decay_schedule(base, max_iters, alpha=alpha)
    start = 0.0 if s.step_fix else base * s.warmup_ratio
    return optax.join_schedules(
        [optax.linear_schedule(start, base, w),
         optax.cosine_decay_schedule(base, max_iters - w, alpha=alpha)], [w])


def _inner(recipe: Recipe, base: float, wd: float, mask):
    sched = stock_schedule(recipe, base)
    if recipe.optimizer == "LARS":
        return optax.lars(sched, weight_decay=wd, weight_decay_mask=mask,
                          trust_coefficient=recipe.eta, eps=recipe.eps, trust_ratio_mask=mask,
                          momentum=recipe.momentum)
    b1, b2 = recipe.betas
    return optax.adamw(sched, b1=b1, b2=b2, eps=recipe.eps, weight_decay=wd, mask=mask)


def stock_optax(recipe: Recipe, params) -> optax.GradientTransformation:
    treedef = jax.tree.structure(params)
    unflat = lambda xs: jax.tree.unflatten(treedef, list(xs))
    n = len(recipe.names)
    if recipe.optimizer == "LARS":
        masked = [not e for e in recipe.lars_exclude]
    else:
        masked = [w > 0 for w in recipe.weight_decay]
    decays = set(recipe.weight_decay) - {0}
    if len(set(recipe.base_lr)) == 1 and len(decays) <= 1:
        tx = _inner(recipe, recipe.base_lr[0], max(decays, default=0.0), unflat(masked))
    else:  # one inner optimizer per (lr, weight decay, mask) group
        keys = list(zip(recipe.base_lr, recipe.weight_decay, masked))
        groups = sorted(set(keys))
        labels = unflat(f"g{groups.index(keys[i])}" for i in range(n))
        tx = optax.multi_transform(
            {f"g{j}": _inner(recipe, lr, wd, lambda p, m=m: jax.tree.map(lambda _: m, p))
             for j, (lr, wd, m) in enumerate(groups)}, labels)
    if recipe.max_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(recipe.max_norm), tx)
    if recipe.every_k > 1:
        tx = optax.MultiSteps(tx, recipe.every_k).gradient_transformation()
    return tx


class TorchRun:
    """torch_ref's optimizer and hooks for named float32 parameters, stepped per micro-iteration.

    ``flat``: {torch name: numpy array}. ``step(grads)`` runs one micro-iteration:
    epoch-start and iteration hooks, the optimizer hook's backward (divides by
    ``update_interval`` and accumulates into ``.grad``), ``after_train_iter``
    (clip + optimizer step at updates), as the mmcv runner orders them.
    """

    def __init__(self, cfg: dict, flat: dict, steps_per_epoch: int, foreach: bool = False):
        import torch

        import torch_ref

        cfg = copy.deepcopy(cfg)
        if foreach:
            cfg["optimizer"]["foreach"] = True
        self.named = [(n, torch.nn.Parameter(torch.tensor(v))) for n, v in flat.items()]
        built = torch_ref.build(cfg, self.named, steps_per_epoch=steps_per_epoch)
        self.runner = torch_ref.Runner(built)
        self.hook = built.optimizer_hook
        self.runner.call("before_run")

    def step(self, grads: dict):
        r = self.runner
        spe = r.steps_per_epoch or r.max_iters
        r.inner_iter = r.iter % spe
        if r.inner_iter == 0:
            r.epoch = r.iter // spe
            r.call("before_train_epoch")
        r.call("before_train_iter")
        self.hook.backward(r, grads)
        r.call("after_train_iter")
        r.iter += 1

    def params(self) -> dict:
        return {n: p.detach().numpy().copy() for n, p in self.named}

    def state_bytes(self) -> int:
        opt = self.runner.optimizer
        return sum(int(np.prod(v.shape)) * v.element_size() for s in opt.state.values()
                   for v in s.values() if hasattr(v, "element_size") and v.dim() > 0)
