"""Inputs that used to run silently differently from torch (or fail with JAX's own words):
each refused at once with a one-line ConfigError naming what is wrong.

- a loss scale or factor that does not fit float32 (torch fails at its first ``scale``);
- a Flax NNX state holding ``BatchStat`` (or other non-``Param``) variables: their
  values would get weight decay;
- gradients of another shape (JAX broadcasts them), a dtype that cannot be cast to the
  parameter's (torch refuses a ``.grad`` of another dtype), or another tree (JAX's
  "Dict key mismatch" never says it is the gradients);
- an ``optimizer`` config that is not a dict, or whose ``type`` is not a string.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx

import optax_selfsup as oss

RUNNER = dict(type="IterBasedRunner", max_iters=8)
SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=0.01)
PARAMS = {"w": jnp.ones(2), "b": jnp.zeros(3)}


def _build(**cfg):
    return oss.build_optimizer(dict(dict(optimizer=SGD, runner=RUNNER), **cfg), PARAMS,
                               steps_per_epoch=4)


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# -- 1. loss scales that do not fit float32 ------------------------------------------------

def test_torch_fails_at_the_first_scale_with_init_scale_1e40():
    """What torch does with the config refused below (the independent evidence)."""
    scaler = torch.amp.GradScaler("cpu", init_scale=1e40)
    with pytest.raises(RuntimeError, match="overflow"):
        scaler.scale(torch.ones(()))


@pytest.mark.parametrize("cfg,fragments", [
    (dict(fp16=dict(loss_scale=dict(init_scale=1e40))),
     ["fp16.loss_scale.init_scale=1e+40", "float32", "inf"]),
    (dict(optimizer_config=dict(type="GradAccumFp16OptimizerHook",
                                loss_scale=dict(init_scale=1e40))),
     ["optimizer_config.loss_scale.init_scale=1e+40", "float32"]),
    (dict(fp16=dict(loss_scale=1e40)), ["fp16.loss_scale=1e+40", "float32"]),
    (dict(optimizer_config=dict(type="Fp16OptimizerHook", loss_scale=1e40)),
     ["optimizer_config.loss_scale=1e+40", "float32"]),
    (dict(fp16=dict(loss_scale=dict(init_scale=1e-50))),
     ["fp16.loss_scale.init_scale=1e-50", "rounds to 0"]),
    (dict(fp16=dict(loss_scale=dict(growth_factor=1e40))),
     ["fp16.loss_scale.growth_factor=1e+40", "float32", "never grow"]),
    (dict(fp16=dict(loss_scale=dict(backoff_factor=1e-50))),
     ["fp16.loss_scale.backoff_factor=1e-50", "rounds to 0"]),
    (dict(fp16=dict(loss_scale=dict(growth_interval=2**31))),
     ["fp16.loss_scale.growth_interval=2147483648", "int32"]),
])
def test_loss_scale_config_outside_float32_is_refused(cfg, fragments):
    with pytest.raises(oss.ConfigError) as err:
        _build(**cfg)
    text = _one_line(err)
    for fragment in fragments:
        assert fragment in text, text


@pytest.mark.parametrize("kwargs,fragments", [
    (dict(init_scale=1e40), ["init_scale=1e+40", "float32"]),
    (dict(init_scale=float("inf")), ["init_scale=inf", "float32"]),
    (dict(growth_factor=1e40), ["growth_factor=1e+40", "float32"]),
    (dict(backoff_factor=1e-50), ["backoff_factor=1e-50", "rounds to 0"]),
    (dict(init_scale="512"), ["init_scale='512'", "must be a number"]),
    (dict(growth_interval=0), ["growth_interval=0", "an int in [1, 2**31 - 1]"]),
    (dict(growth_interval=2.0), ["growth_interval=2.0", "int"]),
])
def test_dynamic_loss_scale_refuses_values_outside_float32(kwargs, fragments):
    with pytest.raises(oss.ConfigError) as err:
        oss.dynamic_loss_scale(optax.sgd(0.1), **kwargs)
    text = _one_line(err)
    for fragment in fragments:
        assert fragment in text, text


def test_largest_float32_scale_is_accepted():
    tx = oss.dynamic_loss_scale(optax.sgd(0.1), init_scale=3.0e38)
    assert np.isfinite(float(oss.loss_scale(tx.init(PARAMS))))


# -- 2. Flax NNX states with non-Param variables ----------------------------------------------

class _Net(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(2, 2, rngs=rngs)
        self.bn1 = nnx.BatchNorm(2, rngs=rngs)


@pytest.mark.parametrize("state_of", [lambda m: nnx.split(m)[1], lambda m: nnx.state(m)],
                         ids=["split", "state"])
def test_nnx_state_with_batch_stats_is_refused(state_of):
    state = state_of(_Net(nnx.Rngs(0)))
    for call in (lambda: oss.sgd(0.1, weight_decay=0.01).init(state),
                 lambda: oss.build_optimizer(dict(optimizer=SGD, runner=RUNNER), state,
                                             steps_per_epoch=4),
                 lambda: oss.describe(dict(optimizer=SGD, runner=RUNNER), state)):
        with pytest.raises(oss.ConfigError) as err:
            call()
        text = _one_line(err)
        for fragment in ("not nnx.Param", "'bn1.mean' (BatchStat)", "'bn1.var' (BatchStat)",
                         "nnx.state(model, nnx.Param)", "nnx.split(model, nnx.Param"):
            assert fragment in text, text


def test_nnx_param_state_trains_and_batch_stats_stay():
    model = _Net(nnx.Rngs(0))
    tx = oss.build_optimizer(dict(optimizer=SGD, runner=RUNNER), nnx.state(model, nnx.Param),
                             steps_per_epoch=4)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    grads = jax.tree.map(jnp.zeros_like, nnx.state(model, nnx.Param))
    optimizer.update(model, grads)
    np.testing.assert_array_equal(np.asarray(model.bn1.var[...]), np.ones(2))
    # weight decay reached the params: w - lr * wd * w
    np.testing.assert_allclose(np.asarray(model.bn1.scale[...]), np.full(2, 1 - 0.1 * 0.01),
                               rtol=1e-6)


# -- 3. gradients of another shape or dtype ----------------------------------------------------

def _sgd_update(grads, params=PARAMS, jit=False):
    tx = oss.sgd(0.1, weight_decay=0.01)
    state = tx.init(params)
    update = jax.jit(tx.update) if jit else tx.update
    return update(grads, state, params)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("grad,shape", [(jnp.ones((2, 2)), "(2, 2)"), (jnp.ones(()), "()"),
                                        (jnp.ones(1), "(1,)")])
def test_gradient_of_another_shape_is_refused(grad, shape, jit):
    with pytest.raises(oss.ConfigError) as err:
        _sgd_update({"w": grad, "b": jnp.ones(3)}, jit=jit)
    text = _one_line(err)
    assert f"the gradient for 'w' has shape {shape} but the parameter has shape (2,)" in text


def test_gradient_of_another_shape_is_refused_through_build_optimizer():
    """The accumulator would broadcast a scalar gradient before the optimizer sees it."""
    for cfg in (dict(), dict(optimizer_config=dict(update_interval=2)),
                dict(fp16=dict(loss_scale="dynamic")),
                dict(optimizer_config=dict(update_interval=2), fp16=dict(loss_scale=512.0))):
        tx = _build(**cfg)
        state = tx.init(PARAMS)
        for grad in (jnp.ones(()), jnp.ones((2, 2))):
            with pytest.raises(oss.ConfigError) as err:
                jax.jit(tx.update)({"w": grad, "b": jnp.ones(3)}, state, PARAMS)
            assert "the gradient for 'w' has shape" in _one_line(err), cfg


def test_scale_by_lars_refuses_a_gradient_of_another_shape():
    tx = oss.scale_by_lars(weight_decay=1e-4)
    with pytest.raises(oss.ConfigError) as err:
        tx.update({"w": jnp.ones(()), "b": jnp.ones(3)}, tx.init(PARAMS), PARAMS)
    assert "scale_by_lars: the gradient for 'w' has shape ()" in _one_line(err)


def test_gradient_dtype_that_cannot_be_cast_is_refused():
    with pytest.raises(oss.ConfigError) as err:
        _sgd_update({"w": jnp.ones(2, jnp.complex64), "b": jnp.ones(3)})
    assert "the gradient for 'w' is complex64 but the parameter is float32" in _one_line(err)
    half = {"w": jnp.ones(2, jnp.float16), "b": jnp.zeros(3, jnp.float16)}
    with pytest.raises(oss.ConfigError) as err:
        _sgd_update({"w": jnp.ones(2, jnp.float16), "b": jnp.ones(3)}, params=half)
    assert "the gradient for 'b' is float32 but the parameter is float16" in _one_line(err)
    with jax.enable_x64(True):
        with pytest.raises(oss.ConfigError) as err:
            _sgd_update({"w": jnp.ones(2, jnp.float64), "b": jnp.ones(3, jnp.float32)})
        assert "the gradient for 'w' is float64 but the parameter is float32" in _one_line(err)


def test_narrower_or_integer_gradients_pass():
    """A float16 gradient for a float32 parameter (autocast) or an int one casts exactly."""
    for grads in ({"w": jnp.ones(2, jnp.float16), "b": jnp.ones(3, jnp.bfloat16)},
                  {"w": jnp.ones(2, jnp.int32), "b": np.ones(3)}):
        updates, _ = _sgd_update(grads)
        assert [u.dtype for u in jax.tree.leaves(updates)] == [jnp.float32] * 2


# -- 4. gradient and params trees that do not match ----------------------------------------

@pytest.mark.parametrize("grads,fragment", [
    ({"w": jnp.ones(2)}, "they have no 'b' (the params have a float32[3] array there)"),
    ({"w": jnp.ones(2), "b": jnp.ones(3), "c": jnp.ones(1)},
     "they have an extra 'c' (a float32[1] array) that the params do not have"),
    ([jnp.ones(3), jnp.ones(2)],
     "at the root they have a list of 2 where the params have a dict with keys 'b', 'w'"),
    ({"w": {"kernel": jnp.ones(2)}, "b": jnp.ones(3)},
     "at 'w' they have a dict with keys 'kernel' where the params have a float32[2] array"),
    ({"w": jnp.ones(2), "b": None},
     "at 'b' they have None where the params have a float32[3] array"),
])
def test_gradient_tree_mismatch_names_the_gradients_and_the_path(grads, fragment):
    with pytest.raises(oss.ConfigError) as err:
        _sgd_update(grads)
    text = _one_line(err)
    assert text.startswith("SGD.update: the gradients (updates) do not match the tree of "
                           "the params: "), text
    assert fragment in text, text


def test_gradient_tree_mismatch_through_build_optimizer():
    for cfg in (dict(), dict(optimizer_config=dict(update_interval=2)),
                dict(fp16=dict(loss_scale="dynamic"))):
        tx = _build(**cfg)
        state = tx.init(PARAMS)
        with pytest.raises(oss.ConfigError) as err:
            tx.update({"w": jnp.ones(2)}, state, PARAMS)
        assert "the gradients (updates) do not match the tree of the params: they have no " \
               "'b'" in _one_line(err), cfg


def test_params_given_to_update_must_match_init():
    tx = oss.adamw(1e-3)
    state = tx.init(PARAMS)
    other = {"w": jnp.ones(2), "b": jnp.zeros(3), "extra": jnp.ones(4)}
    with pytest.raises(oss.ConfigError) as err:
        tx.update(other, state, other)
    text = _one_line(err)
    assert text.startswith("AdamW.update: the params do not match the tree of the params "
                           "given to init: they have an extra 'extra'"), text


@pytest.mark.parametrize("optimizer,fragments", [
    (dict(type=["SGD"], lr=0.1), ["optimizer.type=['SGD']", "a string", "'SGD'", "'AdamW'"]),
    ("SGD", ["optimizer='SGD'", "must be a dict", "dict(type='SGD'"]),
    (1, ["optimizer=1", "must be a dict"]),
    (dict(lr=0.1), ["optimizer: the key 'type' is required", "dict(type='SGD'"]),
])
def test_optimizer_config_of_the_wrong_kind(optimizer, fragments):
    with pytest.raises(oss.ConfigError) as err:
        oss.build_optimizer(dict(optimizer=optimizer, runner=RUNNER), PARAMS, steps_per_epoch=4)
    text = _one_line(err)
    for fragment in fragments:
        assert fragment in text, text
