"""The public schedule API: jit, vmap, optax learning_rate, no retrace, group values."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_selfsup as oss

RUN = dict(steps_per_epoch=10, max_epochs=5)


def test_schedule_is_jittable_and_does_not_retrace_as_the_value_changes():
    schedule = oss.lr_schedule(dict(policy="CosineAnnealing", min_lr=0.0, warmup="exp",
                                    warmup_iters=7, by_epoch=False), 0.5, **RUN)
    traces = []

    @jax.jit
    def f(it):
        traces.append(1)
        return schedule(it)

    values = [float(f(jnp.int32(i))) for i in range(50)]
    assert len(traces) == 1
    assert len(set(values)) > 40
    np.testing.assert_allclose(values, [float(schedule(i)) for i in range(50)], rtol=1e-6)


def test_schedule_accepts_python_int_int32_and_vmap():
    schedule = oss.lr_schedule(dict(policy="step", step=[2, 4]), 1.0, **RUN)
    assert float(schedule(45)) == pytest.approx(0.01)
    batch = jax.vmap(schedule)(jnp.arange(50, dtype=jnp.int32))
    assert batch.shape == (50,)
    np.testing.assert_allclose(batch[::10], [1, 1, 0.1, 0.1, 0.01], rtol=1e-6)


def test_schedule_is_an_optax_learning_rate():
    schedule = oss.lr_schedule(dict(policy="Poly", power=1.0, min_lr=0.0), 0.1, **RUN)
    tx = optax.sgd(learning_rate=schedule)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    step = jax.jit(tx.update)
    for _ in range(20):  # epoch 0 and 1
        updates, state = step({"w": jnp.ones(3)}, state, params)
        params = optax.apply_updates(params, updates)
    # 10 steps at 0.1, 10 steps at 0.08
    np.testing.assert_allclose(params["w"], 1 - 10 * 0.1 - 10 * 0.08, rtol=1e-6)


def test_float64_when_x64_is_enabled():
    with jax.enable_x64(True):
        schedule = oss.lr_schedule(dict(policy="CosineAnnealing", min_lr_ratio=0.1), 0.3, **RUN)
        assert schedule(17).dtype == jnp.float64


def test_no_config_keeps_the_base_value():
    schedule = oss.lr_schedule(None, 0.25, **RUN)
    assert float(schedule(33)) == 0.25


def test_onecycle_per_group_max_lr_needs_the_group_index():
    cfg = dict(policy="OneCycle", max_lr=[0.5, 1.0], by_epoch=False)
    first = oss.lr_schedule(cfg, 0.1, group_index=0, **RUN)
    second = oss.lr_schedule(cfg, 0.1, group_index=1, **RUN)
    assert float(second(0)) == pytest.approx(2 * float(first(0)))
    with pytest.raises(oss.ConfigError, match="group"):
        oss.lr_schedule(cfg, 0.1, **RUN)(0)


def test_hook_type_spelling_is_accepted():
    a = oss.lr_schedule(dict(type="CosineAnnealingLrUpdaterHook", min_lr=0.0), 1.0, **RUN)
    b = oss.lr_schedule(dict(policy="CosineAnnealing", min_lr=0.0), 1.0, **RUN)
    assert float(a(23)) == float(b(23))
