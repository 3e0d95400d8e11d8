"""Measured maximum deviations of optax_selfsup from torch_ref, per feature.

    python bench/parity_report.py

Prints, per lr / momentum policy, the largest relative schedule deviation over
all warmup / by_epoch variants of the parity suite; per optimizer, the largest
|dp|/max(1,|p|) after 200 steps in float32 and float64 over all flag
combinations; per recipe config, the largest parameter deviation over its run.
"""

from __future__ import annotations

import collections
import os
import sys
import warnings

import jax
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "parity_tests"))

import test_lr_schedules as tl  # noqa: E402
import test_momentum_schedules as tm  # noqa: E402
import test_optimizers as to  # noqa: E402
import test_recipes as tr  # noqa: E402

import optim_harness as oh  # noqa: E402
import recipe_harness as rh  # noqa: E402
import schedule_harness as sh  # noqa: E402


def schedules():
    worst = collections.defaultdict(float)
    for param in tl.CASES:
        cfg = param.values[0]
        ours, _ = sh.optax_values(cfg, None, tl.RUN)
        ref, _ = sh.reference(cfg, None, tl.RUN)
        key = "lr " + param.id.split("-")[0]
        worst[key] = max(worst[key], sh.max_rel_dev(ours, ref))
    for param in tm.CASES:
        opt, cfg = param.values
        _, ours = sh.optax_values(tm.LR, cfg, tm.RUN)
        _, ref = sh.reference(tm.LR, cfg, tm.RUN, optimizer=opt)
        key = "momentum " + param.id.split("-")[1]
        worst[key] = max(worst[key], sh.max_rel_dev(ours, ref))
    print("schedule: max |ours - ref| / peak over all variants")
    for key, value in sorted(worst.items()):
        print(f"  {key:32s} {value:.2e}")


def optimizers():
    f32, f64 = collections.defaultdict(float), collections.defaultdict(float)
    for param in to._cases():
        name, kw, mode = param.values
        lr, m = to._schedules(mode)
        ours, _ = oh.run_jax(name, kw, lr, m, to.GRADS, to.PARAMS0, dtype=np.float32)
        ref = oh.run_torch(name, kw, lr, m, to.GRADS, to.PARAMS0, dtype=torch.float32)
        f32[name] = max(f32[name], oh.max_param_error(ours, ref))
        with jax.enable_x64(True):
            ours, _ = oh.run_jax(name, kw, lr, m, to.GRADS, to.PARAMS0, dtype=np.float64)
        ref = oh.run_torch(name, kw, lr, m, to.GRADS, to.PARAMS0, dtype=torch.float64)
        f64[name] = max(f64[name], oh.max_param_error(ours, ref))
    print("optimizer: max |dp|/max(1,|p|) after 200 steps, all flags and schedules")
    for name in f32:
        print(f"  {name:10s} float32 {f32[name]:.2e}   float64 {f64[name]:.2e}")


def recipes():
    print("recipe: max |dp|/max(1,|p|) over every iteration; lr relative deviation")
    for name in sorted(tr.RECIPES):
        cfg, spe, steps, inf_at = tr.load(name)
        values, grads = rh.initial_values(), rh.gradients(steps, inf_at=inf_at)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, lrs, _, upd = rh.run_jax(cfg, values, grads, spe,
                                           fp16=cfg.get("fp16") is not None)
        ref, ref_lrs, _, _ = rh.run_torch(cfg, values, grads, spe)
        err = max(rh.param_error(o, r) for o, r in zip(ours, ref))
        lr_err = rh.rel_error(lrs[upd], ref_lrs[upd])
        print(f"  {name:72s} {err:.2e}  lr {lr_err:.2e}")


if __name__ == "__main__":
    schedules()
    optimizers()
    recipes()
