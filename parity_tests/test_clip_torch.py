"""Gradient clipping against ``torch.nn.utils.clip_grad_norm_`` where its ``+ 1e-6`` counts.

torch clips with ``coef = max_norm / (total + 1e-6)``: for total norms of a few units the
``1e-6`` is below any tolerance, so only small norms can tell a clip without it. Here the
total norms are 1e-7 .. 1e-5 around ``max_norm`` 1e-6 (``coef`` is then about 0.5 where
the term is dropped would give 1), for norm_type 2, 1, inf and 3, through
``oss.clip_grad_norm`` and through the clip ``build_optimizer`` fuses into the optimizer
(``optimizer_config.grad_clip``; SGD with lr 1 from zeros: the params are minus the
clipped gradient).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optax_selfsup as oss

SHAPES = {"a": (5, 4), "b": (7,), "c": ()}
NORM_TYPES = [2.0, 1.0, float("inf"), 3.0]
TOTALS = [1e-7, 3e-7, 9.9e-7, 1e-6, 1.01e-6, 2e-6, 5e-6, 1e-5]


def _grads(total, norm_type, seed=0):
    """Gradients whose torch total ``norm_type``-norm is ``total`` (up to rounding)."""
    rng = np.random.default_rng(seed)
    g = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    flat = np.concatenate([np.ravel(v) for v in g.values()])
    norm = np.max(np.abs(flat)) if norm_type == float("inf") else \
        np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    return {k: (v * (total / norm)).astype(np.float32) for k, v in g.items()}


def _torch_clip(grads, max_norm, norm_type):
    params = {k: torch.nn.Parameter(torch.zeros(v.shape)) for k, v in grads.items()}
    for k, p in params.items():
        p.grad = torch.tensor(grads[k])
    total = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm, norm_type)
    return {k: p.grad.numpy() for k, p in params.items()}, float(total)


def _check(ours, ref, total=None, ref_total=None):
    for k in ref:
        np.testing.assert_allclose(np.asarray(ours[k]), ref[k], rtol=2e-6, atol=0)
    if total is not None:
        assert float(total) == pytest.approx(ref_total, rel=2e-6)


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("max_norm", [1e-6, 3e-6])
def test_clip_grad_norm_matches_torch_at_small_norms(norm_type, max_norm):
    clip = oss.clip_grad_norm(max_norm, norm_type)
    update = jax.jit(clip.update)
    for total in TOTALS + [max_norm * 0.999, max_norm * 1.001]:
        grads = _grads(total, norm_type)
        tree = {k: jnp.asarray(v) for k, v in grads.items()}
        out, state = update(tree, clip.init(tree))
        ref, ref_total = _torch_clip(grads, max_norm, norm_type)
        _check(out, ref, state.grad_norm, ref_total)


@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_clip_fused_into_build_optimizer_matches_torch_at_small_norms(norm_type):
    max_norm = 1e-6
    cfg = dict(optimizer=dict(type="SGD", lr=1.0), runner=dict(type="IterBasedRunner",
                                                                max_iters=4),
               optimizer_config=dict(grad_clip=dict(max_norm=max_norm, norm_type=norm_type)))
    params = {k: jnp.zeros(s) for k, s in SHAPES.items()}
    tx = oss.build_optimizer(cfg, params, steps_per_epoch=4)
    update = jax.jit(tx.update)
    for total in TOTALS:
        grads = _grads(total, norm_type, seed=1)
        updates, state = update({k: jnp.asarray(v) for k, v in grads.items()},
                                tx.init(params), params)
        ref, ref_total = _torch_clip(grads, max_norm, norm_type)
        _check({k: -u for k, u in updates.items()}, ref,
               oss.current_hparams(state)["grad_norm"], ref_total)


@settings(max_examples=40, deadline=None)
@given(log_total=st.floats(-8.0, -4.0), log_max=st.floats(-7.0, -5.0),
       norm_type=st.sampled_from(NORM_TYPES), seed=st.integers(0, 2**16))
def test_clip_grad_norm_matches_torch_hypothesis(log_total, log_max, norm_type, seed):
    max_norm = 10.0 ** log_max
    grads = _grads(10.0 ** log_total, norm_type, seed)
    clip = oss.clip_grad_norm(max_norm, norm_type)
    tree = {k: jnp.asarray(v) for k, v in grads.items()}
    out, state = clip.update(tree, clip.init(tree))
    ref, ref_total = _torch_clip(grads, max_norm, norm_type)
    _check(out, ref, state.grad_norm, ref_total)
