"""The MMEngine reader's refusals, warnings and tables (no training run; the trajectories are
``test_mmengine_recipes.py``'s). Where a refusal mirrors an upstream error, the real MMEngine
/ torch is asked too."""

from __future__ import annotations

import copy
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optax_selfsup as oss
from optax_selfsup.config.mmengine_hooks import HookWarning
from optax_selfsup.paramwise import NormLayerWarning

PARAMS = {"backbone": {"conv": {"weight": jnp.ones((4, 2, 3, 3))},
                       "bn": {"weight": jnp.ones(4), "bias": jnp.zeros(4)}},
          "head": {"fc": {"weight": jnp.ones((3, 4)), "bias": jnp.zeros(3)}}}
BASE = dict(optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9,
                                              weight_decay=1e-4)),
            param_scheduler=dict(type="CosineAnnealingLR", by_epoch=False),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=10))


def cfg_with(**changes) -> dict:
    cfg = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = cfg
        *parents, key = path.split("__")
        for p in parents:
            node = node[p]
        if value is _DROP:
            node.pop(key)
        else:
            node[key] = value
    return cfg


_DROP = object()

REFUSALS = {
    "unknown wrapper key": (dict(optim_wrapper__foo=1), "unknown key.*'foo'"),
    "int loss scale": (dict(optim_wrapper__type="AmpOptimWrapper", optim_wrapper__loss_scale=512),
                       r"loss_scale=512 is a int: MMEngine takes a float \(512.0"),
    "AMP key without AMP": (dict(optim_wrapper__loss_scale="dynamic"),
                            "AmpOptimWrapper arguments"),
    "DeepSpeed": (dict(optim_wrapper__type="DeepSpeedOptimWrapper"), "DeepSpeed.*not supported"),
    "unknown wrapper": (dict(optim_wrapper__type="Foo"), "'AmpOptimWrapper', 'OptimWrapper'"),
    "clip type": (dict(optim_wrapper__clip_grad=dict(type="abs", max_norm=1)),
                  "clip_grad.type='abs' is not one of 'norm', 'value'"),
    "clip only type": (dict(optim_wrapper__clip_grad=dict(type="norm")), "only 'type'"),
    "empty clip": (dict(optim_wrapper__clip_grad={}), "non-empty dict"),
    "clip norm type": (dict(optim_wrapper__clip_grad=dict(max_norm=1, norm_type=0)), "norm_type"),
    "clip value": (dict(optim_wrapper__clip_grad=dict(type="value", clip_value=-1)),
                   "clip_value=-1"),
    "clip key": (dict(optim_wrapper__clip_grad=dict(max_norm=1, clip_value=2)),
                 "unknown key.*'clip_value'"),
    "accumulation": (dict(optim_wrapper__accumulative_counts=0), "accumulative_counts=0"),
    "LARS unscoped": (dict(optim_wrapper__optimizer=dict(type="LARS", lr=0.1)),
                      "LARS is registered only in the 'mmpretrain' and 'mmselfsup'"),
    "Lamb in mmselfsup": (dict(optim_wrapper__optimizer=dict(type="mmselfsup.Lamb", lr=0.1)),
                          "Lamb is registered only in the 'mmpretrain'"),
    "optimizer argument": (dict(optim_wrapper__optimizer=dict(type="SGD", lr=0.1, mom=0.9)),
                           "unexpected keyword.*'mom'"),
    "optimizer value": (dict(optim_wrapper__optimizer=dict(type="SGD", lr=-0.1)), "lr=-0.1"),
    "decay_mult without weight decay": (
        dict(optim_wrapper__optimizer=dict(type="SGD", lr=0.1),
             optim_wrapper__paramwise_cfg=dict(custom_keys={"head": dict(decay_mult=0.0)})),
        "decay_mult but optim_wrapper.optimizer has no weight_decay"),
    "amp dtype": (dict(optim_wrapper__type="AmpOptimWrapper", optim_wrapper__dtype="float8"),
                  "dtype='float8'"),
    "amp error_if_nonfinite": (
        dict(optim_wrapper__type="AmpOptimWrapper",
             optim_wrapper__clip_grad=dict(max_norm=1.0, error_if_nonfinite=True)),
        "error_if_nonfinite=True with AmpOptimWrapper"),
    "scaler argument": (dict(optim_wrapper__type="AmpOptimWrapper",
                             optim_wrapper__loss_scale=dict(growth_factor=1.0)),
                        "growth_factor=1.0"),
    "several optimizers": (dict(optim_wrapper=dict(generator=dict(optimizer=dict(type="SGD")),
                                                   discriminator=dict(optimizer=dict(type="SGD")))),
                           "several optimizers"),
    "shared argument in a group": (
        dict(default_scope="mmpretrain",
             optim_wrapper__optimizer=dict(type="LARS", lr=0.1, weight_decay=1e-4),
             optim_wrapper__paramwise_cfg=dict(custom_keys={"head": dict(eps=1e-3)})),
        "sets 'eps', which LARS reads once for all param groups"),
    "group value": (dict(optim_wrapper__paramwise_cfg=dict(custom_keys={"head": dict(
        momentum=-1)})), r"custom_keys\['head'\].momentum=-1"),
    "no train_cfg": (dict(train_cfg=_DROP), "no 'train_cfg'"),
    "epoch loop without its length": (
        dict(train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=2)), "steps_per_epoch"),
    "second ParamSchedulerHook": (dict(custom_hooks=[dict(type="ParamSchedulerHook")]),
                                  "step every scheduler twice"),
    "mmcv hook": (dict(custom_hooks=[dict(type="DistOptimizerHook", update_interval=2)]),
                  "mmcv 1.x hook"),
    "no scheduler hook": (dict(default_hooks=dict(param_scheduler=None)), "would ever step"),
    "two SwAV entries": (dict(custom_hooks=[dict(type="SwAVHook", batch_size=32,
                                                 frozen_layers_cfg=dict(a=1, b=2))]),
                         "more than one entry"),
    "SwAV inside a window": (
        dict(optim_wrapper__accumulative_counts=4,
             custom_hooks=[dict(type="SwAVHook", batch_size=32,
                                frozen_layers_cfg=dict(head=6))]), "multiple of 4"),
    "SwAV key": (dict(custom_hooks=[dict(type="SwAVHook", batch_size=32, queue=3)]),
                 "unknown key.*'queue'"),
    "auto_scale_lr without batch size": (
        dict(auto_scale_lr=dict(base_batch_size=256, enable=True)), "batch_size=N"),
    "auto_scale_lr key": (dict(auto_scale_lr=dict(base_batch_size=256, enabled=True)),
                          "unknown key.*'enabled'"),
    "weight decay scheduled without one": (
        dict(optim_wrapper__optimizer=dict(type="Rprop", lr=0.1),
             param_scheduler=dict(type="CosineAnnealingParamScheduler",
                                  param_name="weight_decay", by_epoch=False)),
        "Rprop has none"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_name_the_key(name):
    changes, match = REFUSALS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(oss.ConfigError, match=match):
            oss.build_optimizer(cfg_with(**changes), PARAMS)


def test_an_int_loss_scale_is_refused_upstream_too():
    from mmengine.optim import AmpOptimWrapper
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp

    saved = amp.is_cuda_available
    amp.is_cuda_available = lambda: True
    try:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
        with pytest.raises(TypeError, match="loss_scale must be of type float"):
            AmpOptimWrapper(loss_scale=512, optimizer=opt)
    finally:
        amp.is_cuda_available = saved


def test_no_generation_names_what_each_needs():
    with pytest.raises(oss.ConfigError, match="optim_wrapper.*train_cfg") as err:
        oss.build_optimizer({"optimizer": dict(type="SGD", lr=0.1)}, PARAMS)
    assert "no 'runner'" in str(err.value) and "'optimizer' and 'runner'" in str(err.value)


def test_unknown_hook_warns_naming_it_and_known_ones_pass():
    cfg = cfg_with(custom_hooks=[dict(type="EMAHook", momentum=1e-4),
                                 dict(type="mmpretrain.PreciseBNHook", num_samples=8),
                                 dict(type="MyLrTweakHook")])
    with pytest.warns(HookWarning, match=r"custom_hooks\[2\]: 'MyLrTweakHook'"):
        oss.build_optimizer(cfg, PARAMS)


def test_simsiam_hook_without_fix_lr_groups_warns():
    cfg = cfg_with(custom_hooks=[dict(type="SimSiamHook", fix_pred_lr=True, lr=0.05)])
    with pytest.warns(UserWarning, match="no group has it"):
        oss.build_optimizer(cfg, PARAMS)


def test_copied_keys_no_optimizer_reads_are_warned_about():
    cfg = cfg_with(optim_wrapper__paramwise_cfg=dict(custom_keys={"head": dict(
        lars_exclude=True, lr_mult=2.0)}))
    with pytest.warns(UserWarning, match="'lars_exclude'.*SGD does not read it"):
        oss.build_optimizer(cfg, PARAMS)


def test_describe_shows_the_mmengine_groups():
    cfg = dict(default_scope="mmpretrain",
               optim_wrapper=dict(optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.05),
                                  constructor="LearningRateDecayOptimWrapperConstructor",
                                  paramwise_cfg=dict(layer_decay_rate=0.5, norm_decay_mult=0.0,
                                                     custom_keys={".pos_embed": dict(
                                                         decay_mult=0.0)})),
               model=dict(type="ImageClassifier",
                          backbone=dict(type="VisionTransformer", arch="b")))
    params = {"backbone": {"pos_embed": jnp.zeros((1, 2, 4)),
                           "layers": {"11": {"ln1": {"weight": jnp.ones(4),
                                                     "bias": jnp.ones(4)}}}},
              "head": {"fc": {"weight": jnp.ones((2, 4))}}}
    rows = {r["name"]: r for r in oss.describe(cfg, params)}
    assert rows["backbone.pos_embed"]["layer_id"] == 0
    assert rows["backbone.pos_embed"]["weight_decay"] == 0.0
    assert "decay_mult" not in rows["backbone.pos_embed"]  # this constructor pops it
    assert rows["backbone.layers.11.ln1.weight"]["lr"] == pytest.approx(1e-3 * 0.5)
    assert rows["head.fc.weight"]["lr"] == 1e-3 and rows["head.fc.weight"]["lr_scale"] == 1.0
    # leaf order: layers.11.ln1.bias, .weight, pos_embed, head; MMEngine: the backbone's own
    # pos_embed before its submodules
    assert [rows[n]["group"] for n in rows] == [1, 2, 0, 3]
    table = oss.format_table(list(rows.values()))
    assert "layer_id" in table.splitlines()[0] and "group" in table.splitlines()[0]


def test_one_group_without_paramwise_cfg():
    rows = oss.describe(BASE, PARAMS)
    assert {r["group"] for r in rows} == {0}
    assert {r["weight_decay"] for r in rows} == {1e-4}


def _nnx_model():
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.stem = nnx.Conv(2, 4, (3, 3), rngs=rngs)
            self.gate = nnx.BatchNorm(4, rngs=rngs)  # a norm layer no name gives away
            self.head = nnx.Linear(4, 3, rngs=rngs)

    return Net(nnx.Rngs(0))


def test_module_kinds_exact_from_nnx_or_a_warned_guess():
    from flax import nnx

    model = _nnx_model()
    params = nnx.state(model, nnx.Param)
    cfg = cfg_with(optim_wrapper__paramwise_cfg=dict(norm_decay_mult=0.0))
    rows = {r["name"]: r for r in oss.describe(cfg, params, module=model)}
    assert rows["gate.weight"]["weight_decay"] == 0.0 and rows["gate.bias"]["weight_decay"] == 0.0
    assert rows["head.bias"]["weight_decay"] == 1e-4
    with pytest.warns(NormLayerWarning, match=r"'gate.weight' \(norm layer\)"):
        guessed = {r["name"]: r for r in oss.describe(cfg, params)}
    assert guessed["gate.weight"]["weight_decay"] == 0.0  # an affine pair, guessed right
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = {r["name"]: r for r in oss.describe(cfg, params, norm_layers=["gate"])}
    assert named == rows
    with pytest.raises(oss.ConfigError, match="not both"):
        oss.describe(cfg, params, module=model, norm_layers=["gate"])


def test_a_well_named_norm_layer_is_not_warned_about():
    cfg = cfg_with(optim_wrapper__paramwise_cfg=dict(norm_decay_mult=0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = {r["name"]: r for r in oss.describe(cfg, PARAMS)}
    assert rows["backbone.bn.weight"]["weight_decay"] == 0.0


def test_mmcv1_configs_take_no_module_kinds():
    cfg = dict(optimizer=dict(type="SGD", lr=0.1), runner=dict(type="EpochBasedRunner",
                                                               max_epochs=1))
    with pytest.raises(oss.ConfigError, match="norm_layers= apply to MMEngine configs"):
        oss.build_optimizer(cfg, PARAMS, steps_per_epoch=2, norm_layers=["bn"])


def test_error_if_nonfinite_raises_as_torch_does():
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([1.0, float("inf")])
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    cfg = cfg_with(optim_wrapper__clip_grad=dict(max_norm=1.0, error_if_nonfinite=True))
    params = {"w": jnp.zeros(2)}
    tx = oss.build_optimizer(cfg, params)
    state = tx.init(params)
    step = jax.jit(tx.update)
    jax.block_until_ready(step({"w": jnp.ones(2)}, state, params))
    with pytest.raises(Exception, match="non-finite"):
        jax.block_until_ready(step({"w": jnp.array([1.0, jnp.inf])}, state, params))


def test_weight_decay_in_current_hparams_only_when_scheduled():
    params = {"w": jnp.ones(3)}
    tx = oss.build_optimizer(BASE, params)
    state = tx.init(params)
    _, state = tx.update({"w": jnp.ones(3)}, state, params)
    assert "weight_decay" not in oss.current_hparams(state)
    cfg = cfg_with(param_scheduler=dict(type="LinearParamScheduler", param_name="weight_decay",
                                        start_factor=0.5, by_epoch=False, end=3))
    tx = oss.build_optimizer(cfg, params)
    state = tx.init(params)
    seen = []
    for _ in range(4):
        _, state = tx.update({"w": jnp.ones(3)}, state, params)
        seen.append(float(oss.current_hparams(state)["weight_decay"]["w"]))
    np.testing.assert_allclose(seen, [5e-5, 7.5e-5, 1e-4, 1e-4], rtol=1e-6)


def test_weight_decay_as_an_optax_schedule_matches_torch():
    """``oss.sgd(weight_decay=schedule)``: torch SGD with the group's weight_decay set before
    every step."""
    schedule = optax.linear_schedule(1e-2, 1e-1, 5)
    rng = np.random.default_rng(0)
    p0, grads = rng.normal(size=3), rng.normal(size=(6, 3))
    tx = oss.sgd(lr=0.1, momentum=0.9, weight_decay=schedule)
    params = {"w": jnp.asarray(p0, jnp.float32)}
    state = tx.init(params)
    tp = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float32))
    opt = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    for t, g in enumerate(grads):
        updates, state = tx.update({"w": jnp.asarray(g, jnp.float32)}, state, params)
        params = optax.apply_updates(params, updates)
        opt.param_groups[0]["weight_decay"] = float(schedule(t))
        tp.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        np.testing.assert_allclose(np.asarray(params["w"]), tp.detach().numpy(), rtol=2e-6)
    assert float(oss.current_hparams(state)["weight_decay"]["w"]) == pytest.approx(1e-1)


def test_a_disabled_grad_scaler_scales_nothing():
    cfg = cfg_with(optim_wrapper__type="AmpOptimWrapper",
                   optim_wrapper__loss_scale=dict(enabled=False))
    state = oss.build_optimizer(cfg, PARAMS).init(PARAMS)
    with pytest.raises(ValueError, match="no loss scale"):
        oss.loss_scale(state)


def test_amp_static_float_scale_and_accepted_keys():
    cfg = cfg_with(optim_wrapper__type="mmengine.AmpOptimWrapper",
                   optim_wrapper__loss_scale=512.0, optim_wrapper__dtype="bfloat16",
                   optim_wrapper__use_fsdp=True)
    state = oss.build_optimizer(cfg, PARAMS).init(PARAMS)
    assert float(oss.loss_scale(state)) == 512.0


def test_update_and_apply_equals_update_then_apply():
    """The in-place path on an MMEngine chain (AMP, accumulation with a remainder, clip,
    a frozen layer): the same numbers, bit for bit."""
    cfg = cfg_with(optim_wrapper__type="AmpOptimWrapper", optim_wrapper__accumulative_counts=3,
                   optim_wrapper__clip_grad=dict(max_norm=0.5),
                   custom_hooks=[dict(type="SwAVHook", batch_size=8,
                                      frozen_layers_cfg={"head.fc": 3})])
    tx = oss.build_optimizer(cfg, PARAMS)
    rng = np.random.default_rng(0)
    grads = [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), PARAMS)
             for _ in range(10)]
    a, sa = PARAMS, tx.init(PARAMS)
    b, sb = PARAMS, tx.init(PARAMS)
    step = jax.jit(lambda p, s, g: oss.update_and_apply(tx, g, s, p))

    @jax.jit
    def plain(p, s, g):
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    for g in grads:
        scale_a, scale_b = oss.loss_scale(sa), oss.loss_scale(sb)
        a, sa = step(a, sa, jax.tree.map(lambda x, c=scale_a: x * c, g))
        b, sb = plain(b, sb, jax.tree.map(lambda x, c=scale_b: x * c, g))
        jax.tree.map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a["head"]["fc"]["weight"], PARAMS["head"]["fc"]["weight"])


def test_a_top_level_optimizer_that_disagrees_is_warned_about():
    cfg = cfg_with(optimizer=dict(type="SGD", lr=0.6, momentum=0.9, weight_decay=1e-4))
    with pytest.warns(UserWarning, match=r"differs from optim_wrapper.optimizer in 'lr'"):
        rows = oss.describe(cfg, PARAMS)
    assert {r["lr"] for r in rows} == {0.1}  # MMEngine's value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        oss.describe(cfg_with(optimizer=BASE["optim_wrapper"]["optimizer"]), PARAMS)


def test_an_explicit_scope_finds_lars_and_clip_grad_none_clips_nothing():
    """MMSelfSup 1.0's EVA / MILAN linear probes write type='mmselfsup.LARS' without a
    default_scope; 19 real configs write clip_grad=None."""
    cfg = cfg_with(optim_wrapper__optimizer=dict(type="mmselfsup.LARS", lr=0.1, momentum=0.9),
                   optim_wrapper__clip_grad=None)
    plan = oss.plan_optimizer(cfg, PARAMS)
    assert plan.rule.name == "LARS" and plan.clip is None and plan.generation == "mmengine"
    assert plan.group_of == [0] * 5 and plan.num_groups == 1
