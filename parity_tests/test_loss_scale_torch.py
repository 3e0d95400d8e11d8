"""The fp16 loss scale against torch's ``GradScaler`` at EVERY iteration, not only the end.

With power-of-two scales the unscaled float32 gradients do not depend on the scale, so
the final params cannot see a scale that grows a step late: these tests compare
``oss.loss_scale(state)`` with ``GradScaler.get_scale()`` before every micro-batch, and
which iterations applied an update, with growth every 3 updates, injected infs and NaNs
(backoff), accumulation on and off, non-default factors, growth near float32's largest
number, and gradients whose float16 overflow DEPENDS on the scale.

The torch side is MMSelfSup's ``GradAccumFp16OptimizerHook`` on torch's own classes:
each micro-batch's gradient is the backward of ``scaler.scale(loss / k)``; every ``k``
micro-batches ``unscale_``, ``step`` (skipped by the scaler on infs), ``update``,
``zero_grad``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optax_selfsup as oss

SHAPES = {"w": (3, 4), "b": (4,)}
SGD = dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=1e-4)


def _values():
    rng = np.random.default_rng(0)
    return {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}


def _gradients(n, bad=(), scale_range=None, seed=1):
    """``n`` gradients; a non-finite entry at the iterations in ``bad`` (inf, then NaN,
    alternately); ``scale_range=(lo, hi)``: the largest |entry| of each iteration drawn
    log-uniformly in it (so whether the scaled float16 gradient overflows depends on the
    scale)."""
    rng = np.random.default_rng(seed)
    out = []
    for it in range(n):
        g = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
        if scale_range is not None:
            top = np.exp(rng.uniform(*np.log(scale_range)))
            g = {k: (v / np.abs(v).max() * top).astype(np.float32) for k, v in g.items()}
        if it in bad:
            g["w"][1, 2] = np.inf if bad.index(it) % 2 == 0 else np.nan
        out.append(g)
    return out


def _scaled(g, scale, fp16):
    """The gradient of the scaled loss: float32, or computed in float16 (inf past 65504)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.float32(g) * np.float32(scale)
        return out.astype(np.float16).astype(np.float32) if fp16 else out


def _torch(grads, k, scaler_kwargs, fp16=False):
    """(scale before each micro-batch, iterations that stepped, final params). A number
    for ``scaler_kwargs`` is mmcv's static scale: ``GradScaler(init_scale=x)`` and
    ``update(x)`` after every step."""
    static = scaler_kwargs if isinstance(scaler_kwargs, float) else None
    if static is not None:
        scaler_kwargs = dict(init_scale=static)
    params = {n: torch.nn.Parameter(torch.tensor(v)) for n, v in _values().items()}
    opt = torch.optim.SGD(params.values(), lr=SGD["lr"], momentum=SGD["momentum"],
                          weight_decay=SGD["weight_decay"])
    scaler = torch.amp.GradScaler("cpu", **scaler_kwargs)
    scales, stepped, it = [], [], 0
    step = opt.step
    opt.step = lambda *a, **kw: (stepped.append(it), step(*a, **kw))[1]
    for it, g in enumerate(grads):
        scaler.scale(torch.ones(()))  # scaler.scale(loss / k): what the hook scales
        scale = scaler.get_scale()
        scales.append(scale)
        for n, p in params.items():  # backward of scaler.scale(loss / k)
            grad = torch.tensor(_scaled(g[n] / np.float32(k), scale, fp16))
            p.grad = grad if p.grad is None else p.grad + grad
        if (it + 1) % k == 0:
            scaler.unscale_(opt)
            scaler.step(opt)
            scaler.update(static)
            opt.zero_grad()
    return scales, stepped, {n: p.detach().numpy() for n, p in params.items()}


def _ours(grads, k, loss_scale, fp16=False, dtype=jnp.float32):
    """The same run through build_optimizer; the user multiplies the loss by
    ``oss.loss_scale(state)`` (the scale / k); the scale recorded is the GradScaler's,
    ``current_hparams(state)['loss_scale']``."""
    cfg = dict(optimizer=SGD, runner=dict(type="IterBasedRunner", max_iters=len(grads)),
               fp16=dict(loss_scale=loss_scale))
    if k > 1:
        cfg["optimizer_config"] = dict(update_interval=k)
    params = {n: jnp.asarray(v, dtype) for n, v in _values().items()}
    tx = oss.build_optimizer(cfg, params, steps_per_epoch=len(grads))
    state = tx.init(params)

    @jax.jit
    def step(p, s, g):
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, oss.has_updated(s)

    scales, stepped = [], []
    for it, g in enumerate(grads):
        scales.append(float(oss.current_hparams(state)["loss_scale"]))
        multiplier = float(oss.loss_scale(state))
        assert multiplier == np.float32(scales[-1]) / np.float32(k)
        scaled = {n: jnp.asarray(_scaled(v, multiplier, fp16), dtype) for n, v in g.items()}
        params, state, updated = step(params, state, scaled)
        if updated:
            stepped.append(it)
    return scales, stepped, {n: np.asarray(v, np.float32) for n, v in params.items()}


def _compare(ours, ref, params_rtol=1e-5):
    scales, stepped, params = ours
    ref_scales, ref_stepped, ref_params = ref
    first = next((i for i, (a, b) in enumerate(zip(scales, ref_scales)) if a != b), None)
    assert first is None, (f"the scale first differs at iteration {first}: ours "
                           f"{scales[first]!r}, torch {ref_scales[first]!r}")
    assert len(scales) == len(ref_scales)
    assert stepped == ref_stepped
    if params_rtol is not None:
        for n in ref_params:
            np.testing.assert_allclose(params[n], ref_params[n], rtol=params_rtol, atol=1e-6)


BAD = (4, 5, 13, 22, 23, 24, 33, 34, 42)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("scaler", [
    dict(init_scale=2.0**10, growth_interval=3),
    dict(init_scale=2.0**10, growth_factor=4.0, backoff_factor=0.25, growth_interval=2),
    dict(init_scale=3.0, growth_factor=1.5, backoff_factor=0.75, growth_interval=3),
], ids=["default-factors", "4-and-quarter", "1.5-and-0.75"])
def test_scale_at_every_iteration_matches_grad_scaler(scaler, k):
    grads = _gradients(48, bad=BAD)
    ours = _ours(grads, k, scaler)
    ref = _torch(grads, k, scaler)
    _compare(ours, ref)
    steps = list(zip(ref[0], ref[0][1:]))
    assert sum(b > a for a, b in steps) >= 3  # grew several times
    assert sum(b < a for a, b in steps) >= 3  # backed off several times


def test_static_scale_and_dynamic_default_match_grad_scaler():
    grads = _gradients(12, bad=(3,))
    # mmcv: a number is GradScaler(init_scale=x) whose update(x) re-imposes it: a fixed scale
    _compare(_ours(grads, 1, 512.0), _torch(grads, 1, 512.0))
    _compare(_ours(grads, 1, "dynamic"), _torch(grads, 1, {}))


def test_growth_that_would_overflow_float32_keeps_the_scale():
    """torch never grows the scale to inf; an inf scale would skip every update after it."""
    grads = _gradients(8)
    scaler = dict(init_scale=2.0**125, growth_interval=1)
    ours, ref = _ours(grads, 1, scaler), _torch(grads, 1, scaler)
    assert ref[0][-1] == 2.0**127
    _compare(ours, ref)


def test_factors_that_are_not_float32_numbers_match_under_x64():
    """torch multiplies the float32 scale by a float64 factor and rounds to float32."""
    grads = _gradients(30, bad=BAD)
    scaler = dict(init_scale=3.0, growth_factor=1.7, backoff_factor=0.3, growth_interval=2)
    with jax.enable_x64(True):
        ours = _ours(grads, 1, scaler)
    _compare(ours, _torch(grads, 1, scaler))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
def test_float16_overflow_that_depends_on_the_scale_matches_grad_scaler(dtype):
    """The scaled gradient is computed in float16: it overflows when |g| * scale > 65504,
    so the skipped updates depend on the scale in force at that iteration."""
    grads = _gradients(60, scale_range=(0.5, 200.0))
    scaler = dict(init_scale=2.0**10, growth_interval=3)
    ours = _ours(grads, 1, scaler, fp16=True, dtype=dtype)
    ref = _torch(grads, 1, scaler, fp16=True)
    # float16 params (ours) against torch's float32 master params: scales and skips exact
    _compare(ours, ref, params_rtol=1e-5 if dtype == jnp.float32 else None)
    skipped = 60 - len(ref[1])
    assert 8 <= skipped <= 40, skipped  # the scale decides: neither none nor all overflow


def test_float16_overflow_with_accumulation_matches_grad_scaler():
    """torch scales ``loss / k``: its float16 gradient overflows where |g| * scale / k
    passes 65504; ``oss.loss_scale(state)`` is that ``scale / k`` (more cases, k = 3 and
    MMEngine's remainder group: test_loss_scale_accumulation.py)."""
    grads = _gradients(60, scale_range=(0.5, 200.0))
    scaler = dict(init_scale=2.0**10, growth_interval=3)
    ref = _torch(grads, 2, scaler, fp16=True)
    _compare(_ours(grads, 2, scaler, fp16=True), ref)
    assert 3 <= 30 - len(ref[1]) <= 27  # the scale decides: neither none nor all skipped


def test_float16_gradients_unscaled_past_2_to_the_24():
    """1/scale is not a float16 number once the scale passes 2**24 (it rounds to 0): the
    gradients are unscaled in float32, then rounded to float16."""
    g = {"w": np.full(SHAPES["w"], 3e-5, np.float32), "b": np.full(SHAPES["b"], -7e-6,
                                                                    np.float32)}
    scale = 2.0**26
    half = {n: jnp.zeros(s, jnp.float16) for n, s in SHAPES.items()}
    tx = oss.dynamic_loss_scale(oss.sgd(1.0), init_scale=scale)
    state = tx.init(half)
    scaled = {n: jnp.asarray(_scaled(v, scale, True), jnp.float16) for n, v in g.items()}
    updates, _ = tx.update(scaled, state, half)
    # torch: float32 master params (zeros), SGD lr 1: p = -unscaled gradient
    ref = {n: torch.nn.Parameter(torch.zeros(s)) for n, s in SHAPES.items()}
    opt = torch.optim.SGD(ref.values(), lr=1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=scale)
    scaler.scale(torch.ones(()))
    for n, p in ref.items():
        p.grad = torch.tensor(_scaled(g[n], scale, True))
    scaler.step(opt)
    for n, p in ref.items():
        expected = p.detach().numpy().astype(np.float16)
        assert np.all(expected != 0)
        np.testing.assert_array_equal(np.asarray(updates[n]), expected)
