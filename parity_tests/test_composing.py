"""Our pieces inside hand-written optax chains, as an optax user writes them.

Each piece is checked against torch.optim / torch_ref (independent maths): the
optimizers with optax schedules and inject_hyperparams, the wrappers standing
alone, ``accumulate`` on a clock (standing alone: test_accumulate.py), ``scale_by_lars``,
``regex_mask`` / ``paramwise_values``, and a hand-written SimCLR chain equal to
``build_optimizer`` at every iteration.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optax_selfsup as oss
from optax_selfsup.demo import DEMO_MODEL

from recipe_harness import gradients, initial_values, jax_order, nest, param_error, run_torch

RNG = np.random.default_rng(0)
SHAPES = {"w": (4, 3), "b": (3,)}


def _values():
    return {k: RNG.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}


def _grads(n):
    return [{k: (RNG.normal(size=s) * 0.3).astype(np.float32) for k, s in SHAPES.items()}
            for _ in range(n)]


def _run_jax(tx, values, grads, jit=True):
    params = {k: jnp.asarray(v) for k, v in values.items()}
    state = tx.init(params)
    step = (lambda g, s, p: tx.update(g, s, p))
    step = jax.jit(step) if jit else step
    for g in grads:
        updates, state = step({k: jnp.asarray(v) for k, v in g.items()}, state, params)
        params = optax.apply_updates(params, updates)
    return {k: np.asarray(v) for k, v in params.items()}, state


def _run_torch_sgd(values, grads, lr_at, momentum=0.9, **kw):
    ps = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for k, v in values.items()}
    opt = torch.optim.SGD(list(ps.values()), lr=lr_at(0), momentum=momentum, **kw)
    for i, g in enumerate(grads):
        for group in opt.param_groups:
            group["lr"] = lr_at(i)
        for k, p in ps.items():
            p.grad = torch.tensor(g[k], dtype=torch.float64)
        opt.step()
    return {k: p.detach().numpy() for k, p in ps.items()}


def _close(ours, ref, tol=2e-6):
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=tol, atol=tol, err_msg=k)


def test_optimizer_takes_an_optax_schedule_and_counts_its_own_updates():
    sched = optax.cosine_decay_schedule(0.5, decay_steps=12, alpha=0.1)
    values, grads = _values(), _grads(15)
    tx = optax.chain(optax.clip_by_global_norm(10.0), oss.sgd(lr=sched, momentum=0.9))
    ours, _ = _run_jax(tx, values, grads)
    ref = _run_torch_sgd(values, grads, lambda i: float(sched(i)))
    _close(ours, ref)


def test_lars_takes_our_lr_schedule_in_a_plain_chain():
    lr = oss.lr_schedule(dict(policy="CosineAnnealing", min_lr=0.0, warmup="linear",
                              warmup_iters=4, warmup_ratio=0.1, warmup_by_epoch=False),
                         0.3, steps_per_epoch=5, max_epochs=3)
    values, grads = _values(), _grads(15)
    tx = optax.chain(optax.clip_by_global_norm(1.0), oss.lars(lr=lr, momentum=0.9))
    _, state = _run_jax(tx, values, grads)
    hp = oss.current_hparams(state)
    assert float(hp["lr"]["w"]) == pytest.approx(float(lr(14)), rel=1e-6)


def test_momentum_and_betas_take_schedules():
    mom = lambda count: 0.8 + 0.01 * count
    values, grads = _values(), _grads(6)
    ours, _ = _run_jax(oss.sgd(lr=0.1, momentum=mom), values, grads)
    ps = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for k, v in values.items()}
    opt = torch.optim.SGD(list(ps.values()), lr=0.1, momentum=0.8)
    for i, g in enumerate(grads):
        opt.param_groups[0]["momentum"] = 0.8 + 0.01 * i
        for k, p in ps.items():
            p.grad = torch.tensor(g[k], dtype=torch.float64)
        opt.step()
    _close(ours, {k: p.detach().numpy() for k, p in ps.items()})
    _, state = _run_jax(oss.adam(lr=1e-2, betas=(mom, 0.999)), values, grads)
    assert float(oss.current_hparams(state)["momentum"]["b"]) == pytest.approx(0.85)


def test_per_leaf_lr_tree_and_a_mismatched_tree_is_refused():
    values, grads = _values(), _grads(4)
    ours, _ = _run_jax(oss.sgd(lr={"w": 0.1, "b": 0.02}, momentum=0.9), values, grads)
    ps = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for k, v in values.items()}
    opt = torch.optim.SGD([{"params": [ps["w"]], "lr": 0.1}, {"params": [ps["b"]], "lr": 0.02}],
                          momentum=0.9)
    for g in grads:
        for k, p in ps.items():
            p.grad = torch.tensor(g[k], dtype=torch.float64)
        opt.step()
    _close(ours, {k: p.detach().numpy() for k, p in ps.items()})
    with pytest.raises(oss.ConfigError, match="lr=.*pytree shaped like the params"):
        oss.sgd(lr={"w": 0.1, "c": 0.2}).init({k: jnp.asarray(v) for k, v in values.items()})


def test_inject_hyperparams_changes_lr_between_steps():
    values, grads = _values(), _grads(6)
    tx = optax.inject_hyperparams(oss.sgd)(lr=0.1, momentum=0.9)
    params = {k: jnp.asarray(v) for k, v in values.items()}
    state = tx.init(params)
    step = jax.jit(tx.update)
    lrs = [0.1, 0.1, 0.05, 0.05, 0.2, 0.01]
    for lr, g in zip(lrs, grads):
        state.hyperparams["lr"] = jnp.asarray(lr)
        updates, state = step({k: jnp.asarray(v) for k, v in g.items()}, state, params)
        params = optax.apply_updates(params, updates)
    ref = _run_torch_sgd(values, grads, lambda i: lrs[i])
    _close({k: np.asarray(v) for k, v in params.items()}, ref)


def _torch_accumulated(values, grads, k, max_iters, lr=0.1):
    """MMSelfSup DistOptimizerHook: loss / k per micro-step, last short group / r."""
    ps = {n: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for n, v in values.items()}
    opt = torch.optim.SGD(list(ps.values()), lr=lr, momentum=0.9)
    divisible = max_iters // k * k
    for it, g in enumerate(grads):
        factor = k if it < divisible else max_iters - divisible
        for n, p in ps.items():
            add = torch.tensor(g[n], dtype=torch.float64) / factor
            p.grad = add if p.grad is None else p.grad + add
        if (it + 1) % k == 0 or it == max_iters - 1:
            opt.step()
            opt.zero_grad(set_to_none=True)
    return {n: p.detach().numpy() for n, p in ps.items()}


def test_accumulate_standalone_follows_the_remainder_rule():
    values, grads = _values(), _grads(10)
    tx = oss.accumulate(oss.sgd(lr=0.1, momentum=0.9), 4, max_iters=10)
    ours, state = _run_jax(tx, values, grads)
    _close(ours, _torch_accumulated(values, grads, 4, 10))
    assert bool(tx.has_updated(state)) and bool(oss.has_updated(state))
    assert int(oss.iteration(state)) == 10


def test_accumulate_is_a_drop_in_for_multisteps():
    values, grads = _values(), _grads(12)
    params = {k: jnp.asarray(v) for k, v in values.items()}
    ours, theirs = (oss.accumulate(optax.sgd(0.1, momentum=0.9), 3),
                    optax.MultiSteps(optax.sgd(0.1, momentum=0.9), every_k_schedule=3))
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    p_ours = p_theirs = params
    for g in grads:
        g = {k: jnp.asarray(v) for k, v in g.items()}
        u, s_ours = ours.update(g, s_ours, p_ours)
        p_ours = optax.apply_updates(p_ours, u)
        u, s_theirs = theirs.update(g, s_theirs, p_theirs)
        p_theirs = optax.apply_updates(p_theirs, u)
        assert bool(ours.has_updated(s_ours)) == bool(theirs.has_updated(s_theirs))
        _close({k: np.asarray(v) for k, v in p_ours.items()},
               {k: np.asarray(v) for k, v in p_theirs.items()}, tol=1e-6)


def test_schedule_index_inside_clocked_accumulate_is_the_micro_iteration():
    """MMSelfSup advances the lr every micro-step: on a clock the update at it=3 uses
    lr(3) (standing alone, lr(0) as in optax.MultiSteps: test_accumulate.py)."""
    lr = lambda it: 0.1 * (it + 1)
    values, grads = _values(), _grads(8)
    tx = oss.clocked(oss.accumulate(oss.sgd(lr=lr, momentum=0.0), 4))
    ours, state = _run_jax(tx, values, grads)
    ps = {n: torch.tensor(v, dtype=torch.float64) for n, v in values.items()}
    for end in (3, 7):
        for n in ps:
            mean = sum(torch.tensor(grads[i][n], dtype=torch.float64) / 4
                       for i in range(end - 3, end + 1))
            ps[n] = ps[n] - lr(end) * mean
    _close(ours, {n: p.numpy() for n, p in ps.items()})


def test_wrappers_stand_alone_in_a_chain():
    values, grads = _values(), _grads(6)
    tx = oss.skip_frozen(optax.chain(oss.clip_grad_norm(0.5), oss.sgd(lr=0.1, momentum=0.9)),
                         {"w": 3, "b": 0})
    ours, state = _run_jax(tx, values, grads)
    ps = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for k, v in values.items()}
    opt = torch.optim.SGD(list(ps.values()), lr=0.1, momentum=0.9)
    for it, g in enumerate(grads):
        for k, p in ps.items():
            p.grad = None if (k == "w" and it < 3) else torch.tensor(g[k], dtype=torch.float64)
        torch.nn.utils.clip_grad_norm_([p for p in ps.values() if p.grad is not None], 0.5)
        opt.step()
    _close(ours, {k: p.detach().numpy() for k, p in ps.items()})
    scaled = oss.dynamic_loss_scale(optax.sgd(0.1), init_scale=4.0)
    _, s = _run_jax(scaled, values, [{k: v * 4 for k, v in g.items()} for g in grads])
    assert float(oss.loss_scale(s)) == 4.0


def test_clip_grad_norm_refuses_a_nan_max_norm():
    with pytest.raises(ValueError, match="max_norm=nan"):
        oss.clip_grad_norm(float("nan"))


def test_regex_mask_and_paramwise_values_select_like_the_rules():
    params = nest({k: jnp.zeros(s) for k, s in DEMO_MODEL.items()})
    mask = oss.regex_mask(params, [r"(bn|gn)(\d+)?.(weight|bias)", "bias"])
    names = oss.torch_names(params)
    flat = dict(zip(names, jax.tree.leaves(mask)))
    assert flat["backbone.bn1.weight"] and flat["neck.mlp.0.bias"]
    assert not flat["backbone.conv1.weight"] and not flat["backbone.layers.0.ln1.weight"]
    wd = oss.paramwise_values(params, {"bias": dict(weight_decay=0.0),
                                       "conv": dict(weight_decay_mult=2.0)},
                              "weight_decay", 1e-4)
    flat_wd = dict(zip(names, jax.tree.leaves(wd)))
    assert flat_wd["neck.mlp.0.bias"] == 0.0 and flat_wd["backbone.conv1.weight"] == 2e-4
    assert flat_wd["neck.mlp.0.weight"] == 1e-4


SIMCLR = "configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"


def _simclr_cfg():
    cfg = oss.load_config(SIMCLR)
    return oss.merge_options(cfg, ["runner.max_epochs=4", "lr_config.warmup_iters=1"])


def hand_written_simclr_chain(cfg, params, spe):
    """The SimCLR config written by hand from our building blocks (the README's recipe)."""
    opt = cfg["optimizer"]
    rules = opt["paramwise_options"]
    lr = oss.lr_schedule(cfg["lr_config"], opt["lr"], steps_per_epoch=spe,
                         max_epochs=cfg["runner"]["max_epochs"])
    return oss.clocked(optax.chain(
        oss.scale_by_lars(weight_decay=oss.paramwise_values(params, rules, "weight_decay",
                                                            opt["weight_decay"]),
                          exclude=oss.paramwise_values(params, rules, "lars_exclude", False)),
        optax.scale_by_learning_rate(lr),
        optax.trace(decay=opt["momentum"]),
    ))


def test_hand_written_simclr_chain_equals_build_optimizer_and_torch_ref():
    spe = 5
    cfg = _simclr_cfg()
    values = initial_values()
    grads = gradients(4 * spe)
    params = nest({k: jnp.asarray(v) for k, v in values.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = oss.build_optimizer(cfg, params, steps_per_epoch=spe)
        hand = hand_written_simclr_chain(cfg, params, spe)
    states = [built.init(params), hand.init(params)]
    steps = [jax.jit(built.update), jax.jit(hand.update)]
    trees = [params, params]
    ref_params, *_ = run_torch(cfg, values, grads, spe)
    order = jax_order(values)
    worst_built = worst_hand = 0.0
    for it, g in enumerate(grads):
        g_tree = nest({k: jnp.asarray(v) for k, v in g.items()})
        for i in range(2):
            u, states[i] = steps[i](g_tree, states[i], trees[i])
            trees[i] = optax.apply_updates(trees[i], u)
        flat = [dict(zip(order, map(np.asarray, jax.tree.leaves(t)))) for t in trees]
        for name in order:  # the two chains agree to float32 rounding at every iteration
            np.testing.assert_allclose(flat[1][name], flat[0][name], rtol=2e-6, atol=2e-7,
                                       err_msg=f"it={it} {name}")
        worst_built = max(worst_built, param_error(flat[0], ref_params[it + 1]))
        worst_hand = max(worst_hand, param_error(flat[1], ref_params[it + 1]))
    assert worst_built < 2e-6 and worst_hand < 2e-6, (worst_built, worst_hand)


def test_lr_after_the_buffer_is_a_different_recipe():
    """``trace`` before ``scale_by_learning_rate`` is not MMSelfSup's LARS once lr moves."""
    spe = 5
    cfg = _simclr_cfg()
    values = initial_values()
    params = nest({k: jnp.asarray(v) for k, v in values.items()})
    opt = cfg["optimizer"]
    lr = oss.lr_schedule(cfg["lr_config"], opt["lr"], steps_per_epoch=spe, max_epochs=4)
    wrong = optax.chain(oss.scale_by_lars(weight_decay=opt["weight_decay"]),
                        optax.trace(decay=0.9), optax.scale_by_learning_rate(lr))
    right = optax.chain(oss.scale_by_lars(weight_decay=opt["weight_decay"]),
                        optax.scale_by_learning_rate(lr), optax.trace(decay=0.9))
    out = []
    for tx in (wrong, right):
        p, s = params, tx.init(params)
        for g in gradients(8):
            u, s = tx.update(nest({k: jnp.asarray(v) for k, v in g.items()}), s, p)
            p = optax.apply_updates(p, u)
        out.append(jax.tree.leaves(p))
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(*out)) > 1e-4
