"""Drive an optax_selfsup optimizer and its torch counterpart with identical gradients.

The parameter tree covers the shapes that break optimizers: a matrix, a conv
kernel, a vector, a scalar, an all-zero tensor and a tensor whose gradient is
always zero. Gradients are pre-generated (seeded) so both sides see the same.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import torch

import optax_selfsup as oss
import torch_ref

SHAPES = {"matrix": (8, 5), "conv": (4, 3, 3, 3), "vector": (7,), "scalar": (),
          "zeros": (6,), "zero_grad": (5,)}
SPE, EPOCHS = 20, 10  # 200 steps


def initial_params(seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    params["zeros"] = np.zeros(SHAPES["zeros"])
    return params


def gradient_sequence(steps, seed=1):
    rng = np.random.default_rng(seed)
    seq = []
    for _ in range(steps):
        g = {k: rng.normal(size=s) * 0.5 for k, s in SHAPES.items()}
        g["zero_grad"] = np.zeros(SHAPES["zero_grad"])
        seq.append(g)
    return seq


def run_torch(opt_type, kwargs, lr_config, momentum_config, grads, params0, *, dtype,
              device="cpu", groups=None, masks=None):
    """groups: list of (names, extra group options); default one group of everything."""
    named = {k: torch.nn.Parameter(torch.tensor(v, dtype=dtype, device=device))
             for k, v in params0.items()}
    groups = groups or [(list(named), {})]
    param_groups = [dict(params=[named[n] for n in names], **opts) for names, opts in groups]
    optimizer = torch_ref.OPTIMIZERS[opt_type](param_groups, **kwargs)
    hooks = [torch_ref.build_schedule_hook(copy.deepcopy(lr_config), "lr"),
             torch_ref.build_schedule_hook(copy.deepcopy(momentum_config), "momentum")]
    runner = torch_ref.ScheduleRunner(optimizer, hooks, steps_per_epoch=SPE, max_epochs=EPOCHS)

    def body(r):
        for k, p in named.items():
            if masks is not None and not masks[r.iter][k]:
                p.grad = None
            else:
                p.grad = torch.tensor(grads[r.iter][k], dtype=dtype, device=device)
        optimizer.step()

    runner.run(body, num_iters=len(grads))
    return {k: p.detach().cpu().numpy() for k, p in named.items()}


def run_jax(opt_type, kwargs, lr_config, momentum_config, grads, params0, *, dtype,
            masks=None, count_traces=None):
    clock = oss.Clock.create(steps_per_epoch=SPE, max_epochs=EPOCHS)
    tx = oss.torch_optimizer(
        opt_type, **kwargs,
        lr_schedule=oss.parse_schedule(copy.deepcopy(lr_config), "lr", clock),
        momentum_schedule=oss.parse_schedule(copy.deepcopy(momentum_config), "momentum", clock))
    params = {k: jnp.asarray(v, dtype) for k, v in params0.items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state, g, mask):
        if count_traces is not None:
            count_traces.append(1)
        updates, state = tx.update(g, state, params, grad_mask=mask)
        return jax.tree.map(lambda p, u: p + u, params, updates), state

    for i, g in enumerate(grads):
        mask = None if masks is None else {k: jnp.asarray(v) for k, v in masks[i].items()}
        params, state = step(params, state, {k: jnp.asarray(v, dtype) for k, v in g.items()},
                             mask)
    return {k: np.asarray(v) for k, v in params.items()}, state


def max_param_error(ours, ref):
    """max over tensors of max |dp| / max(1, |p|)."""
    return max(float(np.max(np.abs(ours[k] - ref[k]) / np.maximum(1.0, np.abs(ref[k])), initial=0))
               for k in ref)
