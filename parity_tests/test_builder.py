"""build_optimizer from a config against torch_ref.build, on dicts and Flax trees."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optax_selfsup as oss
import torch_ref

from optim_harness import gradient_sequence, initial_params, max_param_error

SPE = 15
CONFIGS = {
    "simclr_lars": dict(
        optimizer=dict(type="LARS", lr=4.8, weight_decay=1e-6, momentum=0.9),
        lr_config=dict(policy="CosineAnnealing", min_lr=0.0, warmup="linear", warmup_iters=2,
                       warmup_ratio=1e-4, warmup_by_epoch=True),
        runner=dict(type="EpochBasedRunner", max_epochs=6)),
    "adamw_onecycle_momentum": dict(
        optimizer=dict(type="AdamW", lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
        lr_config=dict(policy="OneCycle", max_lr=5e-3),
        momentum_config=dict(policy="OneCycle", three_phase=True),
        runner=dict(type="EpochBasedRunner", max_epochs=6)),
    "sgd_step_iter_runner": dict(
        optimizer=dict(type="SGD", lr=0.03, momentum=0.9, weight_decay=1e-4, nesterov=True),
        lr_config=dict(policy="step", step=[40, 70]),
        momentum_config=dict(policy="CosineAnnealing", min_momentum=0.5),
        runner=dict(type="IterBasedRunner", max_iters=90)),
}


def _run_both(cfg, steps):
    params0 = initial_params()
    grads = gradient_sequence(steps)
    tx = oss.build_optimizer(cfg, {k: jnp.asarray(v, jnp.float32) for k, v in params0.items()},
                             steps_per_epoch=SPE)
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params0.items()}
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    lrs = []
    for g in grads:
        updates, state = step(params, state, {k: jnp.asarray(v, jnp.float32) for k, v in g.items()})
        params = optax.apply_updates(params, updates)
        lrs.append(float(oss.current_hparams(state)["lr"]["matrix"]))

    named = [(k, torch.nn.Parameter(torch.tensor(v, dtype=torch.float32)))
             for k, v in params0.items()]
    built = torch_ref.build(cfg, named, steps_per_epoch=SPE)
    ref_lrs = []
    torch_ref.Runner(built).train(
        lambda it: {k: torch.tensor(v, dtype=torch.float32) for k, v in grads[it].items()},
        record=lambda r: ref_lrs.append(r.optimizer.param_groups[0]["lr"]), num_iters=steps)
    ref = {k: p.detach().numpy() for k, p in named}
    return {k: np.asarray(v) for k, v in params.items()}, ref, np.asarray(lrs), np.asarray(ref_lrs)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_built_optimizer_matches_torch_ref_build(name):
    cfg = CONFIGS[name]
    steps = 90
    ours, ref, lrs, ref_lrs = _run_both(cfg, steps)
    assert max_param_error(ours, ref) <= 1e-5
    np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-6, atol=1e-12)


def test_works_on_flax_linen_and_nnx_trees():
    import flax.linen as nn
    from flax import nnx

    cfg = CONFIGS["simclr_lars"]

    class Mlp(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Dense(8)(x)
            x = nn.BatchNorm(use_running_average=True)(x)
            return nn.Dense(2)(x)

    x = jnp.ones((4, 3))
    variables = Mlp().init(jax.random.key(0), x)
    params = variables["params"]
    tx = oss.build_optimizer(cfg, params, steps_per_epoch=SPE)
    state = tx.init(params)
    loss = lambda p: jnp.sum(Mlp().apply({**variables, "params": p}, x) ** 2)
    grads = jax.grad(loss)(params)
    updates, state = jax.jit(tx.update)(grads, state, params)
    new = optax.apply_updates(params, updates)
    assert jax.tree.structure(new) == jax.tree.structure(params)
    assert loss(new) != loss(params)

    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    nparams = nnx.state(model, nnx.Param)
    tx = oss.build_optimizer(cfg, nparams, steps_per_epoch=SPE)
    state = tx.init(nparams)
    grads = jax.tree.map(jnp.ones_like, nparams)
    updates, state = tx.update(grads, state, nparams)
    moved = optax.apply_updates(nparams, updates)
    assert not np.array_equal(moved["kernel"][...], nparams["kernel"][...])


def test_registered_optimizer_is_available_from_a_config():
    @oss.register_optimizer("SignSGDTest", defaults=dict(lr=oss.REQUIRED, weight_decay=0.0),
                            force=True)
    def sign_sgd(g, p, slots, h, t):
        return p - h["lr"] * jnp.sign(g + h["weight_decay"] * p), slots

    class SignSGDTest(torch.optim.Optimizer):
        def __init__(self, params, lr, weight_decay=0.0):
            super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.sub_(group["lr"] * torch.sign(p.grad + group["weight_decay"] * p))

    torch_ref.register_optimizer("SignSGDTest", SignSGDTest)
    cfg = dict(optimizer=dict(type="SignSGDTest", lr=0.01, weight_decay=0.1),
               lr_config=dict(policy="Poly", power=2.0, min_lr=0.0),
               runner=dict(type="EpochBasedRunner", max_epochs=4))
    ours, ref, _, _ = _run_both(cfg, 60)
    assert max_param_error(ours, ref) <= 1e-5


def test_a_registered_rule_that_reads_no_step_keeps_no_step_count():
    seen = []

    def sign_sgd(g, p, slots, h, t):
        seen.append(t)
        return p - h["lr"] * jnp.sign(g), slots

    params = {"w": jnp.ones(3), "b": jnp.zeros(2)}
    for name, reads in (("SignSGDSteps", True), ("SignSGDNoStep", False)):
        oss.register_optimizer(name, defaults=dict(lr=oss.REQUIRED), reads_step=reads,
                               force=True)(sign_sgd)
        tx = oss.torch_optimizer(name, lr=0.5)
        state = tx.init(params)
        seen.clear()
        updates, state = tx.update(params, state, params)
        assert float(updates["w"][0]) == -0.5
        if reads:
            assert [int(t) for t in seen] == [1, 1] and int(state.step["w"]) == 1
        else:
            assert seen == [None, None] and state.step == {"w": None, "b": None}


def test_builder_errors_name_the_key():
    runner = dict(type="EpochBasedRunner", max_epochs=2)
    with pytest.raises(oss.ConfigError, match="no 'optimizer'"):
        oss.build_optimizer(dict(runner=runner), {}, steps_per_epoch=2)
    with pytest.raises(oss.ConfigError, match="optimizer: SGD got unexpected keyword.*'mom'"):
        oss.build_optimizer(dict(optimizer=dict(type="SGD", lr=0.1, mom=0.9), runner=runner), {},
                            steps_per_epoch=2)
    with pytest.raises(oss.ConfigError, match="no 'runner'"):
        oss.build_optimizer(dict(optimizer=dict(type="SGD", lr=0.1)), {}, steps_per_epoch=2)
    with pytest.raises(oss.ConfigError, match="Adagrad has no momentum"):
        oss.build_optimizer(dict(optimizer=dict(type="Adagrad", lr=0.1), runner=runner,
                                 momentum_config=dict(policy="cyclic")), {}, steps_per_epoch=2)


def test_restoring_the_state_continues_the_same_run():
    cfg = CONFIGS["sgd_step_iter_runner"]
    params0 = {k: jnp.asarray(v, jnp.float32) for k, v in initial_params().items()}
    grads = [{k: jnp.asarray(v, jnp.float32) for k, v in g.items()} for g in gradient_sequence(60)]

    def run(tx, params, state, seq):
        step = jax.jit(lambda p, s, g: tx.update(g, s, p))
        for g in seq:
            updates, state = step(params, state, g)
            params = optax.apply_updates(params, updates)
        return params, state

    tx = oss.build_optimizer(cfg, params0, steps_per_epoch=SPE)
    straight, _ = run(tx, params0, tx.init(params0), grads)
    half, state = run(tx, params0, tx.init(params0), grads[:35])
    saved = jax.tree.map(np.asarray, state)  # what a checkpoint holds
    fresh = oss.build_optimizer(cfg, params0, steps_per_epoch=SPE)
    restored = jax.tree.map(jnp.asarray, saved)
    resumed, state = run(fresh, half, restored, grads[35:])
    for k in straight:
        np.testing.assert_array_equal(np.asarray(resumed[k]), np.asarray(straight[k]))
    # iteration 59: one step milestone (40) passed
    assert float(oss.current_hparams(state)["lr"]["matrix"]) == pytest.approx(0.03 * 0.1)
