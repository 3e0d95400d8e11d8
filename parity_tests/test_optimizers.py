"""Each optimizer x every boolean flag x {constant lr, cosine lr, cyclic momentum} vs torch."""

import itertools

import jax
import numpy as np
import pytest
import torch

from optim_harness import (
    EPOCHS,
    SPE,
    gradient_sequence,
    initial_params,
    max_param_error,
    run_jax,
    run_torch,
)

STEPS = SPE * EPOCHS
COSINE = dict(policy="CosineAnnealing", min_lr_ratio=0.01, by_epoch=False)
CYCLIC_M = dict(policy="cyclic", target_ratio=(0.85 / 0.95, 1), cyclic_times=2, step_ratio_up=0.4)

# type: (kwargs, boolean flags, has momentum)
OPTIMIZERS = {
    "SGD": (dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-4),
            ("nesterov", "maximize"), True),
    "LARS": (dict(lr=0.3, momentum=0.9, weight_decay=1e-4, eta=0.02), ("nesterov",), True),
    "Adam": (dict(lr=1e-2, weight_decay=1e-2), ("amsgrad", "maximize", "decoupled_weight_decay"),
             True),
    "AdamW": (dict(lr=1e-2, betas=(0.8, 0.99)), ("amsgrad", "maximize"), True),
    "Adamax": (dict(lr=2e-2, weight_decay=1e-3), ("maximize",), True),
    "Adagrad": (dict(lr=5e-2, lr_decay=1e-3, weight_decay=1e-3, initial_accumulator_value=0.1),
                ("maximize",), False),
    "Adadelta": (dict(weight_decay=1e-3), ("maximize",), False),
    "RMSprop": (dict(lr=1e-2, momentum=0.5, weight_decay=1e-3), ("centered", "maximize"), True),
    "Rprop": (dict(lr=1e-2), ("maximize",), False),
    "ASGD": (dict(lr=2e-2, lambd=1e-3, t0=50, weight_decay=1e-3), ("maximize",), False),
    "NAdam": (dict(lr=1e-2, weight_decay=1e-2), ("maximize", "decoupled_weight_decay"), True),
    "RAdam": (dict(lr=1e-2, weight_decay=1e-2), ("maximize", "decoupled_weight_decay"), True),
}


def _cases():
    for name, (kwargs, flags, has_momentum) in OPTIMIZERS.items():
        modes = ["constant", "cosine"] + (["cyclic_momentum"] if has_momentum else [])
        for values in itertools.product((False, True), repeat=len(flags)):
            on = dict(zip(flags, values))
            kw = {**kwargs, **on}
            if on.get("nesterov"):
                kw["dampening"] = 0.0
            for mode in modes:
                tag = "+".join(f for f, v in on.items() if v) or "plain"
                yield pytest.param(name, kw, mode, id=f"{name}-{tag}-{mode}")


def _schedules(mode):
    if mode == "constant":
        return None, None
    if mode == "cosine":
        return COSINE, None
    return COSINE, CYCLIC_M


GRADS = gradient_sequence(STEPS)
PARAMS0 = initial_params()


@pytest.mark.parametrize("name,kwargs,mode", list(_cases()))
def test_optimizer_matches_torch_float32(name, kwargs, mode, torch_device):
    lr_cfg, m_cfg = _schedules(mode)
    ours, _ = run_jax(name, kwargs, lr_cfg, m_cfg, GRADS, PARAMS0, dtype=np.float32)
    ref = run_torch(name, kwargs, lr_cfg, m_cfg, GRADS, PARAMS0, dtype=torch.float32,
                    device=torch_device)
    err = max_param_error(ours, ref)
    assert err <= 1e-5, f"max |dp|/max(1,|p|) = {err:.3g}"
    moved = max(float(np.max(np.abs(ours[k] - PARAMS0[k]))) for k in ours)
    assert moved > 1e-3  # the run really trained


X64_CASES = [pytest.param(name, {**kw, **{f: (f != "nesterov") for f in flags}}, mode,
                          id=f"{name}-{mode}")
             for name, (kw, flags, has_m) in OPTIMIZERS.items()
             for mode in (["cyclic_momentum"] if has_m else ["cosine"])]


@pytest.mark.parametrize("name,kwargs,mode", X64_CASES)
def test_optimizer_matches_torch_float64(name, kwargs, mode, torch_device):
    lr_cfg, m_cfg = _schedules(mode)
    with jax.enable_x64(True):
        ours, _ = run_jax(name, kwargs, lr_cfg, m_cfg, GRADS, PARAMS0, dtype=np.float64)
    ref = run_torch(name, kwargs, lr_cfg, m_cfg, GRADS, PARAMS0, dtype=torch.float64,
                    device=torch_device)
    err = max_param_error(ours, ref)
    assert err <= 1e-12, f"max |dp|/max(1,|p|) = {err:.3g}"
