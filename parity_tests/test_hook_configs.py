"""optimizer_config spellings and fp16 on float16 parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_selfsup as oss

from recipe_harness import gradients, initial_values, param_error, run_jax, run_torch

RUNNER = dict(type="EpochBasedRunner", max_epochs=10)
SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4)


@pytest.mark.parametrize("optimizer_config,fp16", [
    (dict(type="GradientCumulativeOptimizerHook", cumulative_iters=3,
          grad_clip=dict(max_norm=1.0)), None),
    (dict(type="DistOptimizerHook", update_interval=3, coalesce=True, bucket_size_mb=-1), None),
    (dict(type="GradAccumFp16OptimizerHook", update_interval=2, loss_scale=512.0), None),
    (dict(update_interval=2, grad_clip=dict(max_norm=2.0, norm_type="inf")),
     dict(loss_scale=dict(init_scale=1024.0, growth_interval=4))),
])
def test_hook_spellings_match_torch_ref(optimizer_config, fp16):
    cfg = dict(optimizer=SGD, optimizer_config=optimizer_config, runner=RUNNER,
               lr_config=dict(policy="CosineAnnealing", min_lr_ratio=0.1, by_epoch=False))
    if fp16 is not None:
        cfg["fp16"] = fp16
    scaled = fp16 is not None or "Fp16" in optimizer_config.get("type", "")
    values, grads = initial_values(), gradients(40, inf_at=(9,) if scaled else ())
    ours, *_ = run_jax(cfg, values, grads, 4, fp16=scaled)
    ref, *_ = run_torch(cfg, values, grads, 4)
    assert param_error(ours[-1], ref[-1]) <= 1e-5


def test_invalid_hook_configs_name_the_key():
    base = dict(optimizer=SGD, runner=RUNNER)
    cases = [
        (dict(type="EMAHook"), "optimizer_config.type='EMAHook'"),
        (dict(update_interval=0), "optimizer_config.update_interval=0"),
        (dict(grad_clip=dict(max_norm=-1)), "optimizer_config.grad_clip.max_norm=-1"),
        (dict(grad_clip=dict(max_norm=1, norm="l2")), "'norm'"),
        (dict(frozen_layers_cfg=["prototypes"]), "optimizer_config.frozen_layers_cfg"),
        (dict(udpate_interval=4), "'udpate_interval'"),
    ]
    for optimizer_config, fragment in cases:
        with pytest.raises(oss.ConfigError) as err:
            oss.build_optimizer(dict(base, optimizer_config=optimizer_config),
                                {"w": jnp.ones(2)}, steps_per_epoch=2)
        assert fragment in str(err.value)
    with pytest.raises(oss.ConfigError, match="fp16.loss_scale='big'"):
        oss.build_optimizer(dict(base, fp16=dict(loss_scale="big")), {"w": jnp.ones(2)},
                            steps_per_epoch=2)


def test_fp16_loss_scaling_trains_float16_parameters():
    cfg = dict(optimizer=dict(type="AdamW", lr=1e-3), runner=RUNNER,
               fp16=dict(loss_scale="dynamic"))
    params = {"w": jnp.full((4, 4), 0.5, jnp.float16), "b": jnp.zeros(4, jnp.float16)}
    tx = oss.build_optimizer(cfg, params, steps_per_epoch=5)
    state = tx.init(params)
    loss = lambda p, x: jnp.sum((x @ p["w"] + p["b"]) ** 2).astype(jnp.float32)

    @jax.jit
    def step(params, state, x):
        grads = jax.grad(lambda p: loss(p, x) * oss.loss_scale(state))(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    x = jnp.ones((2, 4), jnp.float16)
    start = float(loss(params, x))
    dtypes = [a.dtype for a in jax.tree.leaves(state)]
    for _ in range(20):
        params, state = step(params, state, x)
    assert step._cache_size() == 1  # the state keeps its dtypes: no retrace
    assert [a.dtype for a in jax.tree.leaves(state)] == dtypes
    assert params["w"].dtype == jnp.float16
    assert np.all(np.isfinite(np.asarray(params["w"], np.float32)))
    # the scaled fp16 gradient overflowed at 2**16 and the scale backed off
    assert float(oss.loss_scale(state)) < 2.0 ** 16
    assert float(loss(params, x)) < start
