"""Run one lr/momentum config through optax_selfsup and through torch_ref.

Both sides get the same config and three param groups with different base
values; the result is an array ``[iteration, group]`` per side.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import torch

import optax_selfsup as oss
import torch_ref

GROUP_LRS = (0.1, 0.05, 0.3)
GROUP_MOMENTA = (0.9, 0.8, 0.95)


def torch_optimizer(kind: str, device="cpu"):
    params = [torch.nn.Parameter(torch.zeros(1, device=device)) for _ in GROUP_LRS]
    if kind == "SGD":
        groups = [dict(params=[p], lr=lr, momentum=m)
                  for p, lr, m in zip(params, GROUP_LRS, GROUP_MOMENTA)]
        return torch.optim.SGD(groups, lr=0.1)
    groups = [dict(params=[p], lr=lr, betas=(m, 0.999))
              for p, lr, m in zip(params, GROUP_LRS, GROUP_MOMENTA)]
    return torch.optim.Adam(groups, lr=0.1)


def _read(group, kind):
    if kind == "lr":
        return group["lr"]
    return group["momentum"] if "momentum" in group else group["betas"][0]


def reference(lr_config, momentum_config, run, optimizer="SGD", device="cpu"):
    """torch_ref values per iteration: (lr [n, 3], momentum [n, 3])."""
    opt = torch_optimizer(optimizer, device)
    rt = run.get("runner_type", "EpochBasedRunner")
    hooks = [torch_ref.build_schedule_hook(copy.deepcopy(lr_config), "lr", rt),
             torch_ref.build_schedule_hook(copy.deepcopy(momentum_config), "momentum", rt)]
    runner = torch_ref.ScheduleRunner(opt, hooks, steps_per_epoch=run.get("steps_per_epoch"),
                                      max_epochs=run.get("max_epochs"),
                                      max_iters=run.get("max_iters"))
    lrs, moms = [], []

    def record(r):
        lrs.append([_read(g, "lr") for g in r.optimizer.param_groups])
        moms.append([_read(g, "momentum") for g in r.optimizer.param_groups])

    runner.run(record)
    return np.asarray(lrs), np.asarray(moms)


def evaluate(config, kind, bases, its, run):
    """optax_selfsup values ``[len(its), len(bases)]`` from one jitted call."""
    clock = oss.Clock.create(**run)
    schedule = oss.parse_schedule(copy.deepcopy(config), kind, clock)
    if schedule is None:
        return np.tile(np.asarray(bases, np.float64), (len(its), 1))
    per_group = [schedule.base_value(b, i) for i, b in enumerate(bases)]
    stacked = jax.tree.map(lambda *xs: jnp.asarray(xs)[None, :], *per_group)
    values = jax.jit(schedule)(jnp.asarray(its)[:, None], stacked)
    return np.asarray(values, np.float64)


def optax_values(lr_config, momentum_config, run):
    its = np.arange(oss.Clock.create(**run).max_iters)
    return (evaluate(lr_config, "lr", GROUP_LRS, its, run),
            evaluate(momentum_config, "momentum", GROUP_MOMENTA, its, run))


def max_rel_dev(ours, ref):
    """Max |ours - ref| over iterations, relative to each group's largest reference value."""
    scale = np.maximum(np.abs(ref).max(axis=0, keepdims=True), 1e-30)
    return float(np.max(np.abs(ours - ref) / scale))
