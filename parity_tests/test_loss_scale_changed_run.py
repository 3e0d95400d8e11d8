"""fp16 + accumulation resumed under a config whose divisor differs from the saved one.

The optimizer state keeps the divisor the next loss is divided by (``oss.loss_scale``
includes it). A run saved by an ``AmpOptimWrapper`` config with ``accumulative_counts=3``
and ``max_iters=41`` before iteration 39 says ``/ 2`` (the last, shorter group); resumed
with ``max_iters=42`` MMEngine divides iterations 39-41 by 3. The first loss after the
restore was multiplied by the saved ``scale / 2``; the accumulation rescales that gradient
by 2 / 3, so the run continues as torch's (float32 rounding: one extra product).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from mmengine_parity import jax_order
from test_loss_scale_accumulation import (
    SCALER,
    SGD,
    _gradients,
    _mmengine_cfg,
    _stepper,
    _values,
)

import optax_selfsup as oss
from optax_selfsup.names import nest_names


def _torch_mmengine(grads, k, steps):
    """torch's GradScaler with MMEngine's divisor rule (``k``, the remainder ``steps % k``
    in the last group), the loss computed in float16: params after every iteration."""
    params = {n: torch.nn.Parameter(torch.tensor(v)) for n, v in _values().items()}
    opt = torch.optim.SGD(params.values(), lr=SGD["lr"], momentum=SGD["momentum"],
                          weight_decay=SGD["weight_decay"])
    scaler = torch.amp.GradScaler("cpu", **SCALER)
    divisible = steps // k * k
    out = []
    for it, g in enumerate(grads):
        raw = torch.stack([(p.half() * torch.tensor(g[n])).sum().float()
                           for n, p in params.items()]).sum()
        scaler.scale(raw / (k if it < divisible else steps - divisible)).backward()
        if (it + 1) % k == 0 or it + 1 == steps:
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
        out.append({n: p.detach().numpy().copy() for n, p in params.items()})
    return out


def test_a_run_resumed_with_a_longer_max_iters_rescales_the_first_gradient():
    k, saved_steps, steps, stop = 3, 41, 42, 39
    grads = _gradients(steps, top=(0.5, 4.0))  # no float16 overflow at scale / k
    values = _values()
    names = jax_order(values)
    params = nest_names({n: jnp.asarray(values[n]) for n in names})
    as_tree = lambda g: nest_names({n: jnp.asarray(g[n]) for n in names})  # noqa: E731

    tx = oss.build_optimizer(_mmengine_cfg(k, saved_steps), params, steps_per_epoch=saved_steps)
    state, step = tx.init(params), _stepper(tx, False)
    for it in range(stop):
        params, state = step(params, state, as_tree(grads[it]))
    scale = np.float32(oss.current_hparams(state)["loss_scale"])
    assert float(oss.loss_scale(state)) == scale / np.float32(2)  # the saved run's divisor

    longer = oss.build_optimizer(_mmengine_cfg(k, steps), params, steps_per_epoch=steps)
    step = _stepper(longer, False)
    history = []
    for it in range(stop, steps):
        params, state = step(params, state, as_tree(grads[it]))
        history.append(params)
        if it == stop:  # from here on the state's divisor is the new config's
            assert float(oss.loss_scale(state)) == scale / np.float32(3)
    assert bool(oss.has_updated(state))
    ref = _torch_mmengine(grads, k, steps)
    for t, p in zip(range(stop, steps), history):
        flat = dict(zip(names, (np.asarray(x) for x in jax.tree.leaves(p))))
        for n in names:
            np.testing.assert_allclose(flat[n], ref[t][n], rtol=1e-5, atol=1e-5)
    moved = max(float(np.max(np.abs(ref[-1][n] - ref[stop - 1][n]))) for n in names)
    assert moved > 1e-3  # the last group's update is visible at this tolerance
