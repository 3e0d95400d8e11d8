"""``build_optimizer(..., layout='flat')``: the same numbers as the per-tensor layout.

float64: every recipe of test_recipes.py, flat (per-tensor trees in and out, and the
params living flat) against per tensor within 1e-12 (only summation orders differ);
against torch_ref see test_recipes.py (``test_recipe_on_the_flat_layout_...``) and
test_lamb.py. Here also: an MMEngine ``optim_wrapper`` with ``paramwise_cfg`` and Lamb
against MMPretrain's own Lamb, ``current_hparams`` names, refusals.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_lamb import (
    TOL,
    UpstreamLamb,
    deviation,
    ieee_sqrt,
    run_ours,
    run_upstream,
    values_and_grads,
)
from test_recipes import FLAT_CI, RECIPES, load

import optax_selfsup as oss
from optax_selfsup.paramwise import optim_wrapper_groups
from optax_selfsup.transforms.rule import Rule

from recipe_harness import gradients, initial_values, param_error, run_jax

STEPS = 24


def _run(name, **kw):
    cfg, spe, steps, inf_at = load(name)
    steps = min(steps, STEPS)
    values = {k: v.astype(np.float64) for k, v in initial_values().items()}
    grads = [{k: v.astype(np.float64) for k, v in g.items()}
             for g in gradients(steps, inf_at=[i for i in inf_at if i < steps])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_jax(cfg, values, grads, spe, fp16=cfg.get("fp16") is not None, **kw)


@pytest.mark.parametrize("name", [n if n in FLAT_CI else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(RECIPES)])
def test_flat_equals_per_tensor_in_float64(name):
    with jax.enable_x64(True):
        ref = _run(name)
        for live in (False, True):
            ours = _run(name, opt_layout="flat", live_flat=live)
            err = max(param_error(o, r) for o, r in zip(ours[0], ref[0]))
            assert err <= 1e-12, (live, err)
            np.testing.assert_array_equal(ours[1], ref[1])  # lr per parameter, by name
            if ref[2] is not None:
                np.testing.assert_array_equal(ours[2], ref[2])
            np.testing.assert_array_equal(ours[3], ref[3])  # updated or skipped
            moved = max(float(np.max(np.abs(ours[0][-1][k] - ours[0][0][k]))) for k in ref[0][0])
            assert moved > 1e-4


# -- an MMEngine optim_wrapper: paramwise_cfg groups, MMPretrain's Lamb --------------------

MM_SHAPES = {"backbone.conv.weight": (4, 3, 3, 3), "backbone.bn.weight": (4,),
             "backbone.bn.bias": (4,), "backbone.fc.weight": (6, 5), "backbone.fc.bias": (6,),
             "head.fc.weight": (3, 6), "head.fc.bias": (3,), "a_zeros": (5,)}
OPTIM_WRAPPER = dict(
    optimizer=dict(type="Lamb", lr=4e-3, weight_decay=0.05, betas=(0.9, 0.98),
                   max_grad_norm=1.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={"head": dict(lr_mult=3.0)}))
LAMB_ARGS = ("lr", "weight_decay", "betas", "eps", "max_grad_norm", "bias_correction",
             "grad_averaging", "trust_clip", "always_adapt")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_mmengine_paramwise_lamb_on_the_flat_layout_matches_upstream(dtype):
    values, grads = values_and_grads(MM_SHAPES, [0.5, 0.02, 0.3, 2.0, 0.05, 1.0] * 2, seed=7)
    names = sorted(MM_SHAPES)
    groups = optim_wrapper_groups(OPTIM_WRAPPER, names, [MM_SHAPES[n] for n in names])
    opt = OPTIM_WRAPPER["optimizer"]
    resolved = {n: groups.resolved(n, opt) for n in names}
    assert resolved["head.fc.weight"]["lr"] == pytest.approx(0.012)
    assert resolved["backbone.bn.bias"]["weight_decay"] == 0.0
    upstream_groups = [([n], {k: v for k, v in resolved[n].items() if k in LAMB_ARGS})
                       for n in names]
    with ieee_sqrt(dtype == np.float64):
        ref, _, _ = run_upstream(UpstreamLamb, values, grads, dtype, groups=upstream_groups)
    per_leaf = {k: {n: resolved[n][k] for n in names} for k in LAMB_ARGS
                if k in resolved[names[0]] and k != "max_grad_norm"}
    with jax.enable_x64(dtype == np.float64):
        params = {k: jnp.asarray(v, dtype) for k, v in values.items()}
        layout = oss.FlatLayout(params)
        ours, state = run_ours(oss.lamb(**per_leaf, max_grad_norm=1.0, layout=layout), values,
                               grads, dtype)
        per_tensor, _ = run_ours(oss.lamb(**per_leaf, max_grad_norm=1.0), values, grads, dtype)
    assert deviation(ours, ref) <= TOL[dtype]
    assert deviation(ours, [{k: v.astype(np.float64) for k, v in p.items()}
                            for p in per_tensor]) <= TOL[dtype]
    slots = {k: layout.unflatten(v) for k, v in state.slots.items()}
    assert set(slots) == {"exp_avg", "exp_avg_sq"}
    np.testing.assert_array_equal(np.asarray(state.step), len(grads))


# -- names, masks, refusals ------------------------------------------------------------------

SIMCLR = "selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"


def _tree():
    return {k: jnp.asarray(v) for k, v in initial_values().items()}


@pytest.mark.parametrize("name", [SIMCLR, "misc/sgd_gradclip-inf_coslr.py"])
def test_current_hparams_are_per_parameter_trees_on_both_layouts(name):
    cfg, spe, _, _ = load(name)
    params = oss.unbox(_tree())
    out = {}
    for layout in (None, "flat"):
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=spe, layout=layout)
        state = tx.init(params)
        grads = jax.tree.map(lambda p: 0.01 * jnp.ones_like(p), params)
        _, state = jax.jit(tx.update)(grads, state, params)
        out[layout] = oss.current_hparams(state)
    assert jax.tree.structure(out["flat"]["lr"]) == jax.tree.structure(params)
    for key in ("lr", "momentum"):
        assert jax.tree.map(float, out["flat"][key]) == jax.tree.map(float, out[None][key])
    assert ("grad_norm" in out["flat"]) == ("grad_norm" in out[None]) == ("clip" in name)
    if "grad_norm" in out[None]:
        np.testing.assert_allclose(out["flat"]["grad_norm"], out[None]["grad_norm"], rtol=1e-6)


def test_the_flat_layout_groups_tensors_by_code_path():
    cfg, _, _, _ = load(SIMCLR)
    params = _tree()
    layout = oss.flat_layout(cfg, params)
    assert layout.names == oss.flat_layout_of(
        oss.build_optimizer(cfg, params, steps_per_epoch=2, layout="flat").init(params)).names
    # LARS's lars_exclude and the weight decays are per-row values: one run of rows
    assert len(set(layout.groups)) == 1
    # a momentum buffer for some tensors only: two runs, each contiguous
    sgd = dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4,
                              paramwise_options={"bias": dict(momentum=0.0)}),
               lr_config=dict(policy="Fixed"), runner=dict(type="IterBasedRunner", max_iters=4))
    layout = oss.flat_layout(sgd, params)
    bias = [n.endswith("bias") for n in layout.names]
    assert 0 < sum(bias) < len(bias)
    assert bias == sorted(bias) or bias == sorted(bias, reverse=True)
    assert len(set(layout.groups)) == 2
    # and the same numbers as per tensor
    grads = jax.tree.map(lambda p: 0.1 * jnp.ones_like(p), params)
    out = {}
    for kind in (None, "flat"):
        tx = oss.build_optimizer(sgd, params, steps_per_epoch=2, layout=kind)
        p, s = params, tx.init(params)
        for _ in range(3):
            p, s = oss.update_and_apply(tx, grads, s, p)
        out[kind] = p
    for a, b in zip(jax.tree.leaves(out["flat"]), jax.tree.leaves(out[None])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_per_leaf_grad_mask_and_a_vector_are_the_same():
    params = {"a": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(4), "c": jnp.full((3,), 2.0)}
    layout = oss.FlatLayout(params)
    tx = oss.sgd(lr=0.1, momentum=0.9, weight_decay=0.01, layout=layout)
    grads = jax.tree.map(lambda p: 0.5 * jnp.ones_like(p), params)
    mask = {"a": True, "b": False, "c": True}
    ref_tx = oss.sgd(lr=0.1, momentum=0.9, weight_decay=0.01)
    ref, _ = ref_tx.update(grads, ref_tx.init(params), params, grad_mask=mask)
    u1, _ = tx.update(grads, tx.init(params), params, grad_mask=mask)
    u2, _ = tx.update(layout.flatten(grads), tx.init(params), layout.flatten(params),
                      grad_mask=layout.per_tensor(mask, bool))
    for u in (u1, layout.unflatten(u2)):
        for k in params:
            np.testing.assert_array_equal(u[k], ref[k])
    assert not np.any(np.asarray(u1["b"]))


@pytest.mark.parametrize("bad", ["Flat", "rows", 3, True])
def test_a_bad_layout_is_refused_listing_the_choices(bad):
    cfg, spe, _, _ = load(SIMCLR)
    with pytest.raises(oss.ConfigError, match="layout=.*choose from None, 'per_tensor', 'flat'"):
        oss.build_optimizer(cfg, _tree(), steps_per_epoch=spe, layout=bad)


def test_a_layout_of_another_tree_is_refused():
    cfg, spe, _, _ = load(SIMCLR)
    with pytest.raises(oss.ConfigError, match="another params tree"):
        oss.build_optimizer(cfg, _tree(), steps_per_epoch=spe,
                            layout=oss.FlatLayout({"w": jnp.ones(3)}))


def test_a_rule_that_does_not_declare_elementwise_is_refused():
    def step(g, p, slots, h, t):
        return p - h["lr"] * g / jnp.linalg.norm(g.ravel()), slots

    rule = Rule("Normalized", dict(lr=0.1), step)
    params = {"w": jnp.ones(3)}
    with pytest.raises(oss.ConfigError, match="'Normalized' does not declare elementwise"):
        oss.torch_optimizer(rule, layout=oss.FlatLayout(params)).init(params)
    # declared, and reading the norm through oss.tensor_norm: per tensor on both layouts
    ok = Rule("Normalized", dict(lr=0.1),
              lambda g, p, s, h, t: (p - h["lr"] * g / oss.tensor_norm(g, h), s),
              elementwise=True)
    params = {"v": jnp.full(3, 0.5), "w": jnp.full(300, 0.5)}
    grads = {"v": jnp.ones(3), "w": jnp.ones(300)}
    for layout in (None, oss.FlatLayout(params)):
        tx = oss.torch_optimizer(ok, layout=layout)
        u, _ = tx.update(grads, tx.init(params), params)
        np.testing.assert_allclose(u["v"], -0.1 / np.sqrt(3), rtol=1e-4)
        np.testing.assert_allclose(u["w"], -0.1 / np.sqrt(300), rtol=1e-4)


@pytest.mark.parametrize("name", ["ASGD", "NAdam"])
def test_rules_with_scalar_state_are_refused_naming_it(name):
    params = {"w": jnp.ones(3)}
    tx = oss.torch_optimizer(name, layout=oss.FlatLayout(params))
    with pytest.raises(oss.ConfigError, match=f"{name} keeps the per-tensor scalar state"):
        tx.init(params)


def test_a_flat_of_another_layout_is_refused():
    params = {"w": jnp.ones(3)}
    tx = oss.sgd(lr=0.1, layout=oss.FlatLayout(params))
    other = oss.FlatLayout({"w": jnp.ones(3), "b": jnp.ones(2)})
    with pytest.raises(oss.ConfigError, match="expected a Flat of the optimizer's layout"):
        tx.init(other.zeros())
    state = tx.init(params)
    updates, _ = tx.update(params, state, params)
    assert isinstance(updates, dict)
    assert isinstance(optax.apply_updates(params, updates), dict)


@pytest.mark.parametrize("name,kw", [
    ("LARS", dict(lr=0.1, momentum=0.9, weight_decay={"a": 1e-4, "b": 0.0, "c": 1e-3, "d": 0.0},
                  lars_exclude={"a": False, "b": True, "c": False, "d": False})),
    ("AdamW", dict(lr=0.01)),
    ("Lamb", dict(lr=0.01, weight_decay=0.02))])
def test_float32_and_bfloat16_buffers_equal_the_per_tensor_steps(name, kw):
    """One buffer per dtype; each keeps its dtype and its tensors' numbers (the per-tensor
    bfloat16 steps are checked against torch in test_float16.py / test_lamb.py)."""
    params = {"a": jnp.linspace(-1, 1, 300, dtype=jnp.float32).reshape(3, 100),
              "b": jnp.ones(7, jnp.bfloat16), "c": jnp.full((5,), 0.5, jnp.float32),
              "d": jnp.arange(4.0, dtype=jnp.bfloat16)}
    grads = jax.tree.map(lambda p: 0.1 * jnp.ones_like(p), params)
    layout = oss.FlatLayout(params)
    assert layout.keys == ("float32", "bfloat16")
    ref_tx, tx = oss.torch_optimizer(name, **kw), oss.torch_optimizer(name, layout=layout, **kw)
    p1, s1, p2, s2 = params, ref_tx.init(params), params, tx.init(params)
    for _ in range(3):
        p1, s1 = oss.update_and_apply(ref_tx, grads, s1, p1)
        p2, s2 = oss.update_and_apply(tx, grads, s2, p2)
    for k in params:
        assert p2[k].dtype == params[k].dtype
        np.testing.assert_allclose(np.asarray(p2[k], np.float32), np.asarray(p1[k], np.float32),
                                   rtol=0, atol=1e-7)
        assert not np.array_equal(np.asarray(p2[k], np.float32), np.asarray(params[k],
                                                                            np.float32))
