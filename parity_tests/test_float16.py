"""float16 parameters against torch.optim on float16 CPU tensors.

torch keeps the moments in the parameter's dtype and adds eps there, so in
float16 the default eps=1e-8 (below the smallest subnormal, 6e-8) rounds away:
an exactly-zero gradient gives 0/0 = NaN in Adam, AdamW, NAdam, RAdam, Adamax,
RMSprop and Adagrad, and a second moment that underflows to 0 under a small
gradient gives inf. The rules round at the same places, so they give the same
non-finite values where torch does and torch's numbers elsewhere.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optax_selfsup as oss

STEPS = 12
SIZE = 48
START = np.random.default_rng(0).normal(size=SIZE).astype(np.float16)

OPTIMIZERS = [
    ("Adam", {}), ("Adam", dict(amsgrad=True)), ("AdamW", {}), ("NAdam", {}), ("RAdam", {}),
    ("Adamax", {}), ("RMSprop", {}), ("Adagrad", {}),
]


def _gradients(kind):
    rng = np.random.default_rng(1)
    if kind == "zero":
        return [np.zeros(SIZE, np.float16)] * STEPS
    if kind == "small":  # g^2 * (1 - beta2) underflows in float16; half the entries zero
        return [np.where(np.arange(SIZE) % 2 == 0, 1e-3, 0.0).astype(np.float16)] * STEPS
    return [(rng.normal(size=SIZE) * 0.5 + 0.2).astype(np.float16) for _ in range(STEPS)]


def _torch(name, kwargs, grads):
    p = torch.nn.Parameter(torch.tensor(START))
    opt = getattr(torch.optim, name)([p], lr=1e-3, foreach=False, **kwargs)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    return p.detach().numpy().copy()


def _ours(name, kwargs, grads):
    params = {"w": jnp.asarray(START)}
    tx = oss.torch_optimizer(name, lr=1e-3, **kwargs)
    state = tx.init(params)
    update = jax.jit(tx.update)
    for g in grads:
        updates, state = update({"w": jnp.asarray(g)}, state, params)
        params = optax.apply_updates(params, updates)
    assert params["w"].dtype == jnp.float16
    return np.asarray(params["w"])


def _ulps(ours, ref):
    """Distance in float16 units in the last place, over the entries finite in both."""
    both = np.isfinite(ours) & np.isfinite(ref)
    a, b = ours[both].astype(np.float64), ref[both].astype(np.float64)
    return np.abs(a - b) / np.spacing(np.abs(b).astype(np.float16)).astype(np.float64)


@pytest.mark.parametrize("kind", ["zero", "small", "ordinary"])
@pytest.mark.parametrize("name,kwargs", OPTIMIZERS,
                         ids=[n + ("-amsgrad" if k else "") for n, k in OPTIMIZERS])
def test_float16_matches_torch(name, kwargs, kind):
    grads = _gradients(kind)
    ref, ours = _torch(name, kwargs, grads), _ours(name, kwargs, grads)
    # the same entries go non-finite (ours may say NaN where torch says inf: the update
    # is returned as new_p - p, and inf - inf is NaN)
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(ref))
    if kind == "zero":
        assert not np.isfinite(ref).any()  # torch: 0 / (0 + eps rounded to 0)
    if kind == "small" and name not in ("Adamax", "Adagrad"):  # their g^2 / |g| survive
        assert not np.isfinite(ref[::2]).any()  # v underflowed: m / 0 = inf
    ulps = _ulps(ours, ref)
    limit = 0 if name in ("Adam", "AdamW") else 4
    assert ulps.max(initial=0) <= limit, (name, kind, ulps.max())


@pytest.mark.parametrize("name", ["Adam", "AdamW", "NAdam"])
def test_an_eps_float16_can_hold_keeps_zero_gradients_finite(name):
    """The way out in torch and here: an eps float16 represents (>= 6e-8), or float32
    parameters. With zero gradients the parameters then stay where they are."""
    grads = _gradients("zero")
    ref = _torch(name, dict(eps=1e-4), grads)
    ours = _ours(name, dict(eps=1e-4), grads)
    np.testing.assert_array_equal(ref, START)
    np.testing.assert_array_equal(ours, START)
