"""``build_optimizer(..., layout='flat')`` on MMEngine configs, step for step against the real
MMEngine (``mmengine_parity.compare``, as test_mmengine_recipes.py does per tensor).

What MMEngine's readers added to the per-tensor optimizer runs on the flat layout too and
is checked here against the real ``Runner``: ``param_scheduler`` moving the weight decay
(per-row values, like the lr) and ``betas[0]``; ``clip_grad`` by value (every element
clamped), by norm with ``norm_type='inf'``, and ``error_if_nonfinite``;
``AmpOptimWrapper`` (static and dynamic scale) with ``accumulative_counts`` (the loss
divided by the micro-step's divisor, ``oss.loss_scale``) and a shorter last group; SimSiam's
fixed predictor lr; LARS's ``lars_exclude`` per row. And AdamW's in-place ``p.mul_`` rounding
(the rules' step is shared) against torch over a long float32 run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from mmengine_parity import compare
from test_mmengine_reader import cfg_with
from test_mmengine_recipes import (
    ADAMW_AMP,
    F32,
    F64,
    MIX,
    MIX_MODULES,
    RESNET,
    RESNET_MODULES,
    SGD_AMP_DICT,
    SGD_EVERYTHING,
    SIMCLR,
    SIMSIAM,
    SPARK,
    SWAV,
    real,
    report,
    swav_freeze_only,  # noqa: F401 (a fixture)
)
from test_rounding import cpu_only

import optax_selfsup as oss
import torch_ref

FLAT = dict(layout="flat")


@pytest.mark.parametrize("dtype,tol", [(np.float32, F32), (np.float64, F64)])
def test_flat_sgd_every_paramwise_rule_accumulation_value_clip(dtype, tol):
    with pytest.warns(UserWarning, match="by_epoch=True under an IterBasedTrainLoop"):
        dev = compare(SGD_EVERYTHING, MIX, steps=17, steps_per_epoch=4, dtype=dtype,
                      jax_kwargs=FLAT, ref_kwargs=dict(modules=MIX_MODULES))
    report("flat SGD paramwise accumulate value clip", dev, dtype)
    dev.check(tol)
    assert dev.run.stepped.tolist() == [(t + 1) % 3 == 0 or t == 16 for t in range(17)]


def test_flat_adamw_static_amp_betas_and_weight_decay_schedules():
    dev = compare(ADAMW_AMP, MIX, steps=20, steps_per_epoch=4, amp=True, jax_kwargs=FLAT,
                  inject_inf={3: "backbone.conv.weight"}, ref_kwargs=dict(modules=MIX_MODULES))
    report("flat AdamW static AMP", dev, np.float32)
    dev.check(F32)
    assert not dev.run.stepped[3] and dev.run.stepped.sum() == 19
    wd = dev.ours["weight_decay"][-1]  # per-parameter trees from the flat state
    assert wd["backbone.bn.weight"] > 0.15 and dev.run.weight_decay["backbone.bn.weight"][0] == 0


def test_flat_sgd_amp_dict_scaler_accumulation_overflow():
    dev = compare(SGD_AMP_DICT, MIX, steps=13, steps_per_epoch=13, amp=True, jax_kwargs=FLAT,
                  inject_inf={4: "head.fc.weight"}, ref_kwargs=dict(modules=MIX_MODULES))
    report("flat SGD AMP dict accumulate", dev, np.float32)
    dev.check(F32)
    assert dev.run.stepped.tolist() == [t in (1, 3, 7, 9, 11, 12) for t in range(13)]
    np.testing.assert_array_equal(dev.ours["loss_scale"], dev.run.loss_scale)
    # the multiplier is the scale / the micro-step's divisor (2, then 1 in the last group)
    assert dev.ours["loss_multiplier"][0] == dev.ours["loss_scale"][0] / 2
    assert dev.ours["loss_multiplier"][12] == dev.ours["loss_scale"][12]


def test_flat_spark_lamb_amp_weight_decay_schedule():
    cfg = real(SPARK)
    cfg["param_scheduler"][-1].update(T_max=20, end=20)
    shapes = dict(RESNET, **{"backbone.mask_token": (1, 4, 1, 1)})
    dev = compare(cfg, shapes, steps=24, steps_per_epoch=1, amp=True, grad_scale=0.1,
                  jax_kwargs=FLAT, inject_inf={6: "neck.mlp.0.weight"},
                  ref_kwargs=dict(modules=RESNET_MODULES))
    report("flat SparK Lamb AMP", dev, np.float32)
    dev.check(F32)
    assert not dev.run.stepped[6] and dev.run.stepped[7]
    norms = np.asarray(dev.ours["grad_norm"])
    ok = dev.run.stepped
    np.testing.assert_allclose(norms[ok], dev.run.grad_norm[ok], rtol=1e-5)


def test_flat_simclr_lars_and_simsiam_fixed_lr():
    dev = compare(real(SIMCLR), RESNET, steps=28, steps_per_epoch=2, jax_kwargs=FLAT,
                  ref_kwargs=dict(modules=RESNET_MODULES))
    report("flat simclr LARS", dev, np.float32)
    dev.check(F32)
    cfg = real(SIMSIAM)
    shapes = dict(RESNET, **{"head.predictor.0.weight": (3, 3), "head.predictor.0.bias": (3,)})
    dev = compare(cfg, shapes, steps=8, steps_per_epoch=3, jax_kwargs=FLAT, ref_kwargs=dict(
        modules=dict(RESNET_MODULES, **{"head.predictor.0": ("linear", 3, 3)})))
    report("flat SimSiam", dev, np.float32)
    dev.check(F32)


def test_flat_swav_one_param_group_frozen_prototypes(swav_freeze_only):  # noqa: F811
    """MMPretrain SwAV: LARS with every parameter in ONE param group (``group_of`` all 0),
    SwAVHook freezing the prototypes for 5 iterations (their rows keep value and state)."""
    import copy

    from mmengine_parity import draw, jax_order, run_ours

    from torch_ref.mmengine import run_mmengine

    cfg = real(SWAV)
    cfg["custom_hooks"][0]["frozen_layers_cfg"] = {"prototypes": 5}
    ref_cfg = copy.deepcopy(cfg)
    ref_cfg["custom_hooks"][0]["type"] = swav_freeze_only
    shapes = dict(RESNET, **{"head.prototypes.weight": (5, 3)})
    values, grads = draw(shapes, 10)
    values = {k: values[k] for k in jax_order(values)}
    run = run_mmengine(ref_cfg, values, grads, steps_per_epoch=3, modules=RESNET_MODULES)
    ours = run_ours(cfg, values, grads, steps_per_epoch=3, layout="flat")
    assert set(oss.plan_optimizer(cfg, values, steps_per_epoch=3).group_of) == {0}
    err = max(float(np.max(np.abs(ours["params"][t][k] - run.params[t][k])
                           / np.maximum(1.0, np.abs(run.params[t][k]))))
              for t in range(10) for k in run.params[t])
    print(f"flat SwAV frozen prototypes [float32]: params {err:.3g}")
    assert err <= F32
    proto = [ours["params"][t]["head.prototypes.weight"] for t in range(10)]
    assert all(np.array_equal(proto[t], values["head.prototypes.weight"]) for t in range(5))


def test_flat_error_if_nonfinite_raises_as_torch_does():
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([1.0, float("inf")])
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    cfg = cfg_with(optim_wrapper__clip_grad=dict(max_norm=1.0, error_if_nonfinite=True))
    params = {"w": jnp.zeros(2), "b": jnp.zeros(3)}
    tx = oss.build_optimizer(cfg, params, layout="flat")
    state = tx.init(params)
    step = jax.jit(tx.update)
    ones = {"w": jnp.ones(2), "b": jnp.ones(3)}
    jax.block_until_ready(step(ones, state, params))
    with pytest.raises(Exception, match="non-finite"):
        jax.block_until_ready(step(dict(ones, w=jnp.array([1.0, jnp.inf])), state, params))


@cpu_only
@pytest.mark.parametrize("name,kwargs", [
    ("AdamW", dict(lr=1e-4, weight_decay=0.05)),
    ("Adam", dict(lr=1e-4, weight_decay=0.05, decoupled_weight_decay=True))])
def test_flat_decoupled_decay_does_not_drift_from_torch(name, kwargs):
    """The flat step is the per-tensor rule's (``mul_`` included): a long float32 run of
    two tensors (sizes not multiples of the row width) stays within ulps of torch."""
    rng = np.random.default_rng(0)
    sizes, steps = {"a": 4099, "b": 300}, 400
    p0 = {k: (rng.normal(size=n) * 0.5).astype(np.float32) for k, n in sizes.items()}
    grads = {k: (rng.normal(size=(steps, n)) * 0.1).astype(np.float32)
             for k, n in sizes.items()}
    params = [torch.nn.Parameter(torch.tensor(p0[k])) for k in sizes]
    opt = torch_ref.OPTIMIZERS[name](params, **kwargs)
    for t in range(steps):
        for p, k in zip(params, sizes):
            p.grad = torch.tensor(grads[k][t])
        opt.step()
    tree = {k: jnp.asarray(v) for k, v in p0.items()}
    layout = oss.FlatLayout(tree)
    tx = oss.torch_optimizer(name, layout=layout, **kwargs)

    def body(carry, g):
        p, s = carry
        return oss.update_and_apply(tx, layout.flatten(g), s, p), None

    run = jax.jit(lambda p, s, gs: jax.lax.scan(body, (p, s), gs)[0][0])
    flat = layout.flatten(tree)
    ours = layout.unflatten(run(flat, tx.init(flat), grads))
    for p, k in zip(params, sizes):
        ref = p.detach().numpy().astype(np.float64)
        diff = np.asarray(ours[k], np.float64) - ref
        assert float(np.max(np.abs(diff) / np.maximum(1.0, np.abs(ref)))) <= 3e-7, k
        assert abs(float(np.mean(diff))) <= 2e-9, k
