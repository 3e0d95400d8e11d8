"""``oss.accumulate`` standing alone is ``optax.MultiSteps`` (optax's own code is the
reference): the same params after every micro-step, bit for bit on CPU, for optax's
and our optimizers with a decaying schedule (read at the inner optimizer's own update
count: lr(0), lr(1), ...), ``use_grad_mean`` both ways, the same ``has_updated``
sequence, ``inner_opt`` and ``gradient_transformation()`` in ``optax.chain`` and
``optax.inject_hyperparams``. Inside ``oss.clocked`` the MMSelfSup clock applies
(test_composing.py, test_recipes.py); the two are told apart here too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optax_selfsup as oss

SHAPES = {"w": (6, 5), "b": (5,)}
SCHED = optax.cosine_decay_schedule(0.1, decay_steps=6, alpha=0.05)
# bit for bit where XLA compiles both alike (the CPU backend); float32 rounding elsewhere
EXACT = jax.default_backend() == "cpu"


def _params(seed=0, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=s), dtype) for k, s in SHAPES.items()}


def _grads(n, seed=1, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    return [{k: jnp.asarray(rng.normal(size=s) * 0.3, dtype) for k, s in SHAPES.items()}
            for _ in range(n)]


def _trajectory(tx, params, grads, in_place=False):
    """Params after every micro-step and ``has_updated`` after every call. The update is
    compiled on its own: fused with ``apply_updates`` XLA may contract a multiply-add
    into one rounding in one program and not in another (1 ulp, stock optax alike)."""
    if in_place:
        step = jax.jit(lambda g, s, p: oss.update_and_apply(tx, g, s, p))
    else:
        update = jax.jit(tx.update)

        def step(g, s, p):
            u, s = update(g, s, p)
            return optax.apply_updates(p, u), s
    has_updated = getattr(tx, "has_updated", oss.has_updated)
    state, out, flags = tx.init(params), [], []
    for g in grads:
        params, state = step(g, state, params)
        out.append(params)
        flags.append(bool(has_updated(state)))
    return out, flags, state


def _same(ours, theirs, tol=1e-6):
    for a, b in zip(ours, theirs):
        for k in b:
            if EXACT and tol is None:
                np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
            else:
                np.testing.assert_allclose(np.asarray(a[k], np.float64),
                                           np.asarray(b[k], np.float64),
                                           rtol=tol or 1e-6, atol=tol or 1e-6, err_msg=k)


INNERS = {
    "optax.sgd": lambda: optax.sgd(SCHED, momentum=0.9),
    "oss.sgd": lambda: oss.sgd(lr=SCHED, momentum=0.9, weight_decay=1e-2),
    "oss.lars": lambda: oss.lars(lr=SCHED, momentum=0.9, weight_decay=1e-2),
    "chain": lambda: optax.chain(optax.clip_by_global_norm(0.5), oss.sgd(lr=SCHED, momentum=0.9,
                                                                           nesterov=True)),
}


@pytest.mark.parametrize("use_grad_mean", [True, False])
@pytest.mark.parametrize("inner", sorted(INNERS))
def test_standalone_is_multisteps_bit_for_bit(inner, use_grad_mean):
    params, grads = _params(), _grads(16)
    ours = oss.accumulate(INNERS[inner](), every_k_schedule=4, use_grad_mean=use_grad_mean)
    theirs = optax.MultiSteps(INNERS[inner](), every_k_schedule=4, use_grad_mean=use_grad_mean)
    p_ours, f_ours, _ = _trajectory(ours, params, grads)
    p_theirs, f_theirs, _ = _trajectory(theirs, params, grads)
    assert f_ours == f_theirs == [False, False, False, True] * 4
    _same(p_ours, p_theirs, tol=None)
    p_in_place, f_in_place, _ = _trajectory(ours, params, grads, in_place=True)
    assert f_in_place == f_ours
    # our optimizers: bit for bit; stock optax's sgd fused with ``p + u``: 1 ulp
    _same(p_in_place, p_ours, tol=None if inner.startswith("oss") else 1e-7)


def test_standalone_adam_is_multisteps_to_float32_rounding():
    """Adam's divide and square root compile a few ulp apart in different fusions (two
    compilations of plain optax.adamw differ as much), so only float32 rounding here."""
    params, grads = _params(), _grads(12)
    make = lambda: optax.adamw(SCHED, weight_decay=0.05)
    for mean in (True, False):
        p_ours, f_ours, _ = _trajectory(oss.accumulate(make(), 3, mean), params, grads)
        p_theirs, f_theirs, _ = _trajectory(optax.MultiSteps(make(), 3, mean), params, grads)
        assert f_ours == f_theirs
        _same(p_ours, p_theirs, tol=1e-6)


def test_standalone_schedule_counts_updates_as_torch_does():
    """Against torch.optim.SGD: the group mean, lr(0), lr(1), ... at the updates."""
    params, grads, k = _params(), _grads(12), 4
    p_ours, _, _ = _trajectory(oss.accumulate(oss.sgd(lr=SCHED, momentum=0.9), k), params,
                               grads)
    ps = {n: torch.nn.Parameter(torch.tensor(np.asarray(v), dtype=torch.float64))
          for n, v in params.items()}
    opt = torch.optim.SGD(list(ps.values()), lr=0.0, momentum=0.9)
    for update in range(len(grads) // k):
        opt.param_groups[0]["lr"] = float(SCHED(update))
        for n, p in ps.items():
            p.grad = sum(torch.tensor(np.asarray(grads[update * k + i][n]), dtype=torch.float64)
                         for i in range(k)) / k
        opt.step()
    _same([p_ours[-1]], [{n: p.detach().numpy() for n, p in ps.items()}], tol=2e-6)


def test_on_a_clock_the_schedule_is_the_micro_iteration():
    """The documented choice: oss.clocked(accumulate) reads lr(3), lr(7), ... (MMSelfSup)."""
    params, grads = _params(), _grads(8)
    lr = lambda it: 0.1 / (1.0 + it)
    alone, _, _ = _trajectory(oss.accumulate(oss.sgd(lr=lr), 4), params, grads)
    clocked, _, _ = _trajectory(oss.clocked(oss.accumulate(oss.sgd(lr=lr), 4)), params, grads)
    for lrs, got in (((lr(0), lr(1)), alone[-1]), ((lr(3), lr(7)), clocked[-1])):
        want = {n: np.asarray(v, np.float64) for n, v in params.items()}
        for i, lr_at in enumerate(lrs):
            for n in want:
                want[n] = want[n] - lr_at * sum(np.asarray(grads[4 * i + j][n], np.float64)
                                                for j in range(4)) / 4
        _same([got], [want], tol=2e-6)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 5), steps=st.integers(1, 11), mean=st.booleans(),
       seed=st.integers(0, 2**16))
def test_any_group_size_and_length_is_multisteps(k, steps, mean, seed):
    """To float32 rounding: with dampening (``m b + (1 - d) g``) XLA fuses the two
    programs' multiply-adds differently (a few ulp; the same maths otherwise)."""
    params, grads = _params(seed), _grads(steps, seed + 1)
    make = lambda: oss.sgd(lr=SCHED, momentum=0.9, dampening=0.1)
    p_ours, f_ours, s_ours = _trajectory(oss.accumulate(make(), k, mean), params, grads)
    p_theirs, f_theirs, s_theirs = _trajectory(optax.MultiSteps(make(), k, mean), params, grads)
    assert f_ours == f_theirs
    _same(p_ours, p_theirs, tol=5e-7)
    assert int(oss.iteration(s_ours)) == steps


def test_gradient_transformation_in_chain_and_inject_hyperparams():
    params, grads = _params(), _grads(9)
    chain = lambda acc: optax.chain(optax.clip_by_global_norm(1.0),
                                    acc(oss.sgd(lr=SCHED, momentum=0.9), 3)
                                    .gradient_transformation())
    _same(_run_plain(chain(oss.accumulate), params, grads),
          _run_plain(chain(optax.MultiSteps), params, grads), tol=None)

    def injected(acc):
        factory = lambda learning_rate: acc(optax.sgd(learning_rate, momentum=0.9), 3)
        return optax.inject_hyperparams(lambda learning_rate: factory(learning_rate)
                                        .gradient_transformation())(learning_rate=0.05)
    _same(_run_plain(injected(oss.accumulate), params, grads),
          _run_plain(injected(optax.MultiSteps), params, grads), tol=None)


def _run_plain(tx, params, grads):
    out, state = [], tx.init(params)
    step = jax.jit(tx.update)
    for g in grads:
        u, state = step(g, state, params)
        params = optax.apply_updates(params, u)
        out.append(params)
    return out


def test_inner_opt_and_injected_inner_hyperparams():
    inner = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)
    tx = oss.accumulate(inner, 2)
    assert tx.inner_opt is inner
    assert tx.gradient_transformation() is tx
    params, grads = _params(), _grads(6)
    state = tx.init(params)
    theirs = optax.MultiSteps(inner, 2)
    s_theirs = theirs.init(params)
    p_ours = p_theirs = params
    ours_update, theirs_update = jax.jit(tx.update), jax.jit(theirs.update)
    for i, g in enumerate(grads):
        if i == 2:  # change the lr between groups, as a user's schedule hook would
            state.inner.hyperparams["learning_rate"] = jnp.asarray(0.02)
            s_theirs.inner_opt_state.hyperparams["learning_rate"] = jnp.asarray(0.02)
        u, state = ours_update(g, state, p_ours)
        p_ours = optax.apply_updates(p_ours, u)
        u, s_theirs = theirs_update(g, s_theirs, p_theirs)
        p_theirs = optax.apply_updates(p_theirs, u)
    _same([p_ours], [p_theirs], tol=None)


def test_low_precision_params_accumulate_in_float32_as_multisteps():
    params, grads = _params(dtype=jnp.bfloat16), _grads(8, dtype=jnp.bfloat16)
    make = lambda: optax.sgd(SCHED, momentum=0.9)
    tx = oss.accumulate(make(), 4)
    p_ours, _, state = _trajectory(tx, params, grads)
    p_theirs, _, _ = _trajectory(optax.MultiSteps(make(), 4), params, grads)
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(state.acc))
    _same(p_ours, p_theirs, tol=None)
    kept = oss.accumulate(make(), 4, accumulator_dtype=None).init(params)
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(kept.acc))


@pytest.mark.parametrize("bad", [0, -2, True, 2.5, "4", None])
def test_bad_group_size_is_refused(bad):
    with pytest.raises(oss.ConfigError, match="every_k_schedule"):
        oss.accumulate(optax.sgd(0.1), bad)


def test_callable_group_size_is_refused_naming_multisteps():
    with pytest.raises(oss.ConfigError, match="optax.MultiSteps"):
        oss.accumulate(optax.sgd(0.1), every_k_schedule=lambda step: 4)
    with pytest.raises(oss.ConfigError, match="use_grad_mean"):
        oss.accumulate(optax.sgd(0.1), 4, use_grad_mean="yes")
    with pytest.raises(TypeError):  # MultiSteps' should_skip_update_fn has no counterpart
        oss.accumulate(optax.sgd(0.1), 4, True, None)
