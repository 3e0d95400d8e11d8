"""Hypothesis: random optimizers, hyperparameters, flags and gradient scales against torch."""

import os

import numpy as np
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from optim_harness import gradient_sequence, initial_params, max_param_error, run_jax, run_torch

SETTINGS = settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 25)), deadline=None,
                    derandomize=os.environ.get("CI") == "true",
                    suppress_health_check=[HealthCheck.too_slow])
floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False)


@st.composite
def optimizer_cases(draw):
    name = draw(st.sampled_from(["SGD", "LARS", "Adam", "AdamW", "Adamax", "Adagrad",
                                 "Adadelta", "RMSprop", "Rprop", "ASGD", "NAdam", "RAdam"]))
    kw = {"lr": draw(floats(1e-4, 0.3))}
    wd = draw(st.sampled_from([0.0, 1e-4, 1e-2]))
    if name in ("SGD", "LARS"):
        m = draw(st.sampled_from([0.0, 0.5, 0.9]))
        nesterov = m > 0 and draw(st.booleans())
        kw.update(momentum=m, weight_decay=wd, nesterov=nesterov,
                  dampening=0.0 if nesterov else draw(st.sampled_from([0.0, 0.1])))
        if name == "LARS":
            kw.update(eta=draw(floats(1e-3, 0.1)))
    elif name in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam"):
        kw.update(betas=(draw(floats(0.5, 0.99)), draw(floats(0.9, 0.9999))),
                  eps=draw(st.sampled_from([1e-8, 1e-6])), weight_decay=wd)
        if name in ("Adam", "AdamW"):
            kw.update(amsgrad=draw(st.booleans()))
    elif name == "RMSprop":
        kw.update(alpha=draw(floats(0.8, 0.999)), momentum=draw(st.sampled_from([0.0, 0.9])),
                  centered=draw(st.booleans()), weight_decay=wd)
    elif name == "Rprop":
        kw.update(etas=(draw(floats(0.1, 0.9)), draw(floats(1.05, 2.0))))
    elif name == "ASGD":
        kw.update(t0=draw(st.sampled_from([5.0, 1e6])), lambd=draw(floats(0, 1e-2)),
                  weight_decay=wd)
    elif name == "Adagrad":
        kw.update(lr_decay=draw(floats(0, 0.1)), weight_decay=wd,
                  initial_accumulator_value=draw(floats(0, 1)))
    else:
        kw.update(rho=draw(floats(0.5, 0.99)), weight_decay=wd)
    if name != "LARS":
        kw["maximize"] = draw(st.booleans())
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    return name, kw, scale, draw(st.integers(0, 2**16))


@SETTINGS
@given(optimizer_cases())
# large Nesterov steps whose sum cancels: both float32 runs are 1e-5 from float64
@example(("SGD", dict(lr=0.25, momentum=0.9, weight_decay=1e-4, nesterov=True, dampening=0.0,
                      maximize=False), 30.0, 38))
def test_random_optimizer_configs_match_torch(case):
    name, kwargs, scale, seed = case
    grads = [{k: v * scale for k, v in g.items()} for g in gradient_sequence(25, seed=seed)]
    params0 = initial_params(seed)
    lr_cfg = dict(policy="CosineAnnealing", min_lr_ratio=0.05, by_epoch=False)
    ours, _ = run_jax(name, kwargs, lr_cfg, None, grads, params0, dtype=np.float32)
    ref = run_torch(name, kwargs, lr_cfg, None, grads, params0, dtype=torch.float32)
    error = max_param_error(ours, ref)
    if error > 1e-5:
        # float32 rounding amplified (big steps, cancelling sums) in both runs: then ours
        # must be as close to torch's float64 run as torch's float32 run is
        truth = run_torch(name, kwargs, lr_cfg, None, grads, params0, dtype=torch.float64)
        ours_off, torch_off = max_param_error(ours, truth), max_param_error(ref, truth)
        assert ours_off <= 2 * torch_off + 1e-6, (error, ours_off, torch_off)
