"""MMEngine's own scheduler classes driven in the Runner's loop order (no Runner, fast).

``reference_values(param_scheduler, loop, bases, ...)`` builds a torch optimizer with one
param group per base value inside MMEngine's ``OptimWrapper`` (which adds the base-settings
group when there are several groups, as the Runner's does), builds every scheduler as
``Runner._build_param_scheduler`` does (default ``end`` = ``max_epochs`` if ``by_epoch``
(default True) else ``max_iters``, then ``build_scheduler_from_cfg`` with the data loader
length as ``epoch_length``: ``convert_to_iter_based`` is upstream code), then runs
``EpochBasedTrainLoop`` / ``IterBasedTrainLoop``'s hook order: ``before_train_epoch``
writes, per iteration ``before_train_iter`` writes, *record*, ``after_train_iter`` steps of
the ``by_epoch=False`` schedulers, and after each epoch the ``by_epoch=True`` ones. It returns
``{param: [T, G] float64}``: what an optimizer step of each iteration read.

``check(param_scheduler, epochs=... | iters=..., L=...)`` compares optax_selfsup's schedules
with it at every iteration of every group, in float32 (1e-6) and float64 (1e-12) of each
group's scale (its base, or its largest value when larger).
"""

from __future__ import annotations

import copy
import warnings

import jax
import numpy as np
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry.build_functions import build_scheduler_from_cfg

from optax_selfsup.schedules.mmengine import parse_param_scheduler
from optax_selfsup.schedules.mmengine_loop import TrainLoop
from torch_ref.mmengine.upstream import load_mmpretrain

_REGISTRY = None


def registry():
    """MMPretrain's PARAM_SCHEDULERS (a child of MMEngine's: holds both sets of classes)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_mmpretrain()["registry.py"].PARAM_SCHEDULERS
    return _REGISTRY


def build_optimizer(bases: dict[str, list[float]], optimizer: str = "SGD"):
    lrs = bases["lr"]
    G = len(lrs)
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(G)]
    groups = []
    for g in range(G):
        group = dict(params=[params[g]], lr=lrs[g],
                     weight_decay=bases.get("weight_decay", [0.0] * G)[g])
        if optimizer == "SGD":
            group["momentum"] = bases.get("momentum", [0.9] * G)[g]
        else:
            group["betas"] = (bases.get("momentum", [0.9] * G)[g], 0.999)
        groups.append(group)
    cls = torch.optim.SGD if optimizer == "SGD" else torch.optim.AdamW
    return OptimWrapper(cls(groups, lr=lrs[0]))


def build_schedulers(param_scheduler, wrapper, *, by_epoch_loop: bool, max_epochs: int,
                     max_iters: int, steps_per_epoch: int):
    cfgs = param_scheduler if isinstance(param_scheduler, (list, tuple)) else [param_scheduler]
    out = []
    for cfg in cfgs:
        cfg = copy.deepcopy(cfg)
        cfg.setdefault("end", max_epochs if cfg.get("by_epoch", True) else max_iters)
        out.append(build_scheduler_from_cfg(
            cfg, registry(), default_args=dict(optimizer=wrapper, epoch_length=steps_per_epoch)))
    return out


def reference_values(param_scheduler, *, by_epoch_loop: bool, steps_per_epoch: int,
                     max_epochs: int | None = None, max_iters: int | None = None,
                     bases: dict[str, list[float]], optimizer: str = "SGD",
                     writes=(), record=None, params=("lr", "momentum", "weight_decay")):
    """``writes``: ``[(param, mask, value, 'epoch'|'iter')]`` as SimSiamHook does.
    ``record``: the iterations to record (default all)."""
    if by_epoch_loop:
        max_iters = max_epochs * steps_per_epoch
    else:
        max_epochs = 1
    wrapper = build_optimizer(bases, optimizer)
    groups = wrapper.optimizer.param_groups
    scheds = build_schedulers(param_scheduler, wrapper, by_epoch_loop=by_epoch_loop,
                              max_epochs=max_epochs, max_iters=max_iters,
                              steps_per_epoch=steps_per_epoch)
    wanted = None if record is None else set(int(t) for t in record)
    out = {p: [] for p in params}

    def read(p, group):
        if p == "momentum":  # what torch reads: betas[0] for AdamW
            return group["momentum"] if optimizer == "SGD" else group["betas"][0]
        return group[p]

    def write(when):
        for param, mask, value, every in writes:
            if every == when or (when == "epoch" and every == "iter"):
                for g, m in enumerate(mask):
                    if m:
                        groups[g][param] = value

    with warnings.catch_warnings():
        # the optimizer never steps here (the values do not depend on it); MMEngine's
        # "scheduler.step() before optimizer.step()" warning is about that
        warnings.filterwarnings("ignore", message="Detected call of `scheduler.step")
        _loop(scheds, groups, out, params, read, write, wanted, by_epoch_loop, max_epochs,
              max_iters, steps_per_epoch)
    return {p: np.asarray(v, np.float64) for p, v in out.items()}


def _loop(scheds, groups, out, params, read, write, wanted, by_epoch_loop, max_epochs,
          max_iters, steps_per_epoch):
    t = 0
    epochs = max_epochs if by_epoch_loop else 1
    for _ in range(epochs):
        write("epoch")
        for _ in range(steps_per_epoch if by_epoch_loop else max_iters):
            write("iter")
            if wanted is None or t in wanted:
                for p in params:
                    out[p].append([float(read(p, g)) for g in groups])
            for s in scheds:
                if not s.by_epoch:
                    s.step()
            t += 1
        for s in scheds:
            if s.by_epoch:
                s.step()


# --- comparing with optax_selfsup --------------------------------------------------------

BASES = dict(lr=[0.1, 0.0375, 0.2], momentum=[0.9, 0.8, 0.95], weight_decay=[1e-4, 0.0, 5e-2])
PARAMS = ("lr", "momentum", "weight_decay")
PAD = 1024


def ours(schedule, n, base):
    """Eagerly, in chunks of one size: eager JAX reuses its compiled operations."""
    chunks = [schedule(np.arange(a, a + PAD), np.asarray(base)) for a in range(0, n, PAD)]
    return np.concatenate([np.asarray(c, np.float64) for c in chunks])[:n]


def check(param_scheduler, *, epochs=None, iters=None, L=4, bases=BASES, optimizer="SGD",
          writes=(), n_groups=3, expect_table=None, params=PARAMS, **kw):
    """Compare every parameter at every iteration, float32 and float64; returns the
    schedules and the worst float32 deviation (relative to the scale)."""
    loop = TrainLoop.epochs(epochs, L) if epochs else TrainLoop.iters(iters, L)
    ref = reference_values(param_scheduler, by_epoch_loop=bool(epochs), steps_per_epoch=L,
                           max_epochs=epochs, max_iters=iters, bases=bases,
                           optimizer=optimizer, params=params,
                           writes=[(w.param_name, w.mask, w.value, w.every) for w in writes])
    scheds = parse_param_scheduler(param_scheduler, loop, n_groups=n_groups,
                                   hook_writes=writes,
                                   optimizer_momentum="momentum" if optimizer == "SGD"
                                   else "betas", **kw)
    worst = 0.0
    for p in params:
        schedule = scheds.for_param(p)
        scale = np.maximum(np.abs(bases[p]), np.abs(ref[p]).max(axis=0))
        scale = np.where(scale == 0, 1.0, scale)
        for x64, tol in ((False, 1e-6), (True, 1e-12)):
            with jax.enable_x64(x64):
                got = ours(schedule, loop.max_iters, bases[p])
            err = np.abs(got - ref[p]) / scale
            t, g = np.unravel_index(err.argmax(), err.shape)
            assert err.max() <= tol, (
                f"{p} x64={x64}: |ours - mmengine| = {err.max():.3g} of the scale at t={t}, "
                f"group {g}: ours {got[t, g]!r} mmengine {ref[p][t, g]!r}")
            if not x64:
                worst = max(worst, float(err.max()))
        if expect_table is not None and p == "lr":
            assert (schedule.table_rows > 0) == expect_table, schedule.table_rows
    return scheds, worst
