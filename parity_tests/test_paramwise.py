"""Parameter-wise rules, Flax names, layer decay, SimSiam hook order, clip norms."""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optax_selfsup as oss
import torch_ref

from recipe_harness import (
    MODEL,
    gradients,
    initial_values,
    jax_order,
    nest,
    param_error,
    rel_error,
    run_jax,
    run_torch,
)

RUNNER = dict(type="EpochBasedRunner", max_epochs=20)


def _torch_groups(optimizer_cfg, names):
    named = [(n, torch.nn.Parameter(torch.zeros(1))) for n in names]
    _, groups = torch_ref.param_groups.param_groups(optimizer_cfg, named)
    return groups


def _tree_of(names):
    return nest({n: jnp.zeros(MODEL.get(n, (1,))) for n in names})


RULE_CASES = {
    "order_and_override": dict(
        type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4,
        paramwise_options={"bn": dict(weight_decay=0.0, lr_mult=2.0),
                           "bias": dict(lr=0.5, momentum=0.5),
                           "backbone.bn1.bias": dict(lr_mult=0.1, weight_decay_mult=3.0)}),
    "mult_relative_to_optimizer_value": dict(
        type="LARS", lr=0.3, weight_decay=1e-6, momentum=0.9,
        paramwise_options={"neck": dict(lr_mult=10.0), "mlp": dict(lr_mult=0.5),
                           "(bn|gn)(\\d+)?.(weight|bias)": dict(weight_decay=0.0,
                                                                lars_exclude=True)}),
    "adam_betas_and_eps": dict(
        type="AdamW", lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05,
        paramwise_options={"pos_embed|cls_token": dict(weight_decay=0.0, eps=1e-6),
                           "head": dict(betas=(0.8, 0.9))}),
}


@pytest.mark.parametrize("name", list(RULE_CASES))
def test_rules_give_the_torch_param_groups(name):
    optimizer_cfg = RULE_CASES[name]
    names = jax_order(dict.fromkeys(MODEL, 0))
    cfg = dict(optimizer=optimizer_cfg, runner=RUNNER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = oss.describe(cfg, _tree_of(names), steps_per_epoch=3)
        plan = oss.plan_optimizer(cfg, _tree_of(names), steps_per_epoch=3)
    groups = _torch_groups(optimizer_cfg, names)
    defaults = torch_ref.OPTIMIZERS[optimizer_cfg["type"]]
    for row, hp, group in zip(rows, plan.hparams, groups):
        for key, value in hp.items():
            expected = group.get(key, optimizer_cfg.get(key, _torch_default(defaults, key)))
            assert value == pytest.approx(expected), (row["name"], key)


def _torch_default(cls, key):
    """The torch default of an argument; a group-only option (lars_exclude) is off."""
    import inspect
    parameter = inspect.signature(cls.__init__).parameters.get(key)
    return False if parameter is None else parameter.default


def test_mult_of_a_value_the_optimizer_does_not_set_is_an_error():
    cfg = dict(optimizer=dict(type="SGD", lr=0.1, paramwise_options={"bias": dict(
        momentum_mult=0.5)}), runner=RUNNER)
    with pytest.raises(oss.ConfigError, match=r"\['bias'\]\.momentum_mult.*no 'momentum'"):
        oss.build_optimizer(cfg, _tree_of(jax_order(dict.fromkeys(MODEL, 0))), steps_per_epoch=2)


def test_invalid_regex_is_an_error_naming_it():
    cfg = dict(optimizer=dict(type="SGD", lr=0.1, paramwise_options={"(bn": dict(lr=1)}),
               runner=RUNNER)
    with pytest.raises(oss.ConfigError, match=re.escape("invalid regular expression '(bn'")):
        oss.build_optimizer(cfg, _tree_of(jax_order(dict.fromkeys(MODEL, 0))), steps_per_epoch=2)


def test_rules_matching_nothing_are_reported_once():
    cfg = dict(optimizer=dict(type="SGD", lr=0.1, paramwise_options={
        "norm_decay_mult": dict(weight_decay=0.0), "bias": dict(weight_decay=0.0),
        "relative_position_bias_table": dict(weight_decay=0.0)}), runner=RUNNER)
    with pytest.warns(UserWarning) as record:
        oss.build_optimizer(cfg, _tree_of(jax_order(dict.fromkeys(MODEL, 0))), steps_per_epoch=2)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1
    assert "'norm_decay_mult'" in messages[0] and "'relative_position_bias_table'" in messages[0]
    assert "'bias'" not in messages[0]


def test_describe_lists_every_parameter():
    cfg = oss.merge_options(oss.load_config(
        "configs/selfsup/swav/swav_resnet50_8xb32-mcrop-2-6-coslr-200e_in1k.py"), [])
    rows = oss.describe(cfg, _tree_of(jax_order(dict.fromkeys(MODEL, 0))), steps_per_epoch=5005)
    by_name = {r["name"]: r for r in rows}
    assert by_name["backbone.bn1.weight"]["lars_exclude"] is True
    assert by_name["backbone.bn1.weight"]["weight_decay"] == 0.0
    assert by_name["backbone.conv1.weight"]["weight_decay"] == 1e-6
    assert by_name["prototypes.weight"]["frozen_until"] == 5005
    table = oss.format_table(rows)
    assert "prototypes.weight" in table and "frozen_until" in table.splitlines()[0]


class FlaxLayout:
    """The same model as Flax names it: kernels (HWIO / in-out), scale, list attributes."""

    @staticmethod
    def flax_name(name, ndim):
        name = re.sub(r"\.(\d+)\.", lambda m: f"_{m.group(1)}.", name)  # layer1.0 -> layer1_0
        name = re.sub(r"(downsample|mlp|predictor)_(\d+)\.", r"\1.layers_\2.", name)
        if name.endswith(".weight"):
            name = name[:-6] + ("kernel" if ndim >= 2 else "scale")
        return "params." + name

    @classmethod
    def to_tree(cls, flat):
        out = {}
        for name, value in flat.items():
            value = np.asarray(value)
            if value.ndim == 4:
                value = value.transpose(2, 3, 1, 0)
            elif value.ndim == 2 and name.endswith("weight"):
                value = value.T
            out[cls.flax_name(name, value.ndim)] = jnp.asarray(value)
        return nest(out)

    @classmethod
    def to_flat(cls, tree):
        back = {cls.flax_name(n, len(s)): n for n, s in MODEL.items()}
        out = {}
        for path, value in jax.tree_util.tree_flatten_with_path(tree)[0]:
            name = back[".".join(str(k.key) for k in path)]
            value = np.asarray(value)
            if value.ndim == 4:
                value = value.transpose(3, 2, 0, 1)
            elif value.ndim == 2 and name.endswith("weight"):
                value = value.T
            out[name] = value
        return out


# config -> whether its regexes pick other tensors on untranslated Flax names
FLAX_CONFIGS = {"selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py": True,  # bn .scale
                "selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py": False,  # 'ln', 'bias'
                # layer decay finds no 'backbone.layers.<i>' and says so
                "benchmarks/classification/vit-base-p16_ft-8xb128-coslr-100e_in1k.py": "error"}


@pytest.mark.parametrize("name,raw_differs", list(FLAX_CONFIGS.items()))
def test_flax_named_model_trains_like_torch_with_the_default_name_map(name, raw_differs):
    cfg = oss.load_config(f"configs/{name}")
    values, grads = initial_values(), gradients(60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, *_ = run_jax(cfg, values, grads, 2, layout=FlaxLayout)
        if raw_differs == "error":
            with pytest.raises(oss.ConfigError, match="backbone.layers"):
                run_jax(cfg, values, grads, 2, layout=FlaxLayout, name_map=None)
        else:
            raw, *_ = run_jax(cfg, values, grads, 2, layout=FlaxLayout, name_map=None)
    ref, *_ = run_torch(cfg, values, grads, 2)
    assert param_error(ours[-1], ref[-1]) <= 1e-5
    if raw_differs != "error":  # untranslated names select the wrong tensors
        assert (param_error(raw[-1], ref[-1]) > 1e-4) == raw_differs


def test_swin_layer_decay_matches_the_torch_constructor():
    names = ["backbone.patch_embed.projection.weight", "backbone.mask_token",
             "backbone.stages.0.blocks.0.attn.w", "backbone.stages.0.blocks.1.attn.w",
             "backbone.stages.0.downsample.reduction.weight",
             "backbone.stages.0.downsample.norm.weight",
             "backbone.stages.1.blocks.0.attn.w", "backbone.stages.1.blocks.1.mlp.w",
             "backbone.stages.1.blocks.2.mlp.w", "backbone.norm.weight", "head.fc.weight"]
    optimizer_cfg = dict(type="AdamW", lr=1e-3, weight_decay=0.05, model_type="swin",
                         layer_decay=0.9, constructor="TransformerFinetuneConstructor",
                         paramwise_options={"norm": dict(weight_decay=0.0)})
    tree = nest({n: jnp.zeros(3) for n in names})
    plan = oss.plan_optimizer(dict(optimizer=optimizer_cfg, runner=RUNNER), tree,
                              steps_per_epoch=2)
    order = jax_order(dict.fromkeys(names, 0))
    groups = _torch_groups(optimizer_cfg, order)
    ours = np.array([h["lr"] for h in plan.hparams])
    ref = np.array([g.get("lr", 1e-3) for g in groups])
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert len(set(np.round(ours, 12))) >= 5
    wd = [h["weight_decay"] for h in plan.hparams]
    assert wd == [g.get("weight_decay", 0.05) for g in groups]


SIMSIAM_CASES = {
    "by_epoch_lr_with_warmup_adjust_by_epoch": (
        dict(policy="CosineAnnealing", min_lr=0.0, warmup="linear", warmup_iters=7), True),
    "by_iter_lr_adjust_by_epoch": (dict(policy="CosineAnnealing", min_lr=0.0, by_epoch=False),
                                   True),
    "by_epoch_lr_adjust_by_iter": (dict(policy="step", step=[3], warmup="constant",
                                        warmup_iters=2, warmup_by_epoch=True), False),
    "no_warmup_adjust_by_epoch": (dict(policy="step", step=[2, 4]), True),
}


@pytest.mark.parametrize("case", list(SIMSIAM_CASES))
def test_simsiam_fixed_lr_follows_the_upstream_hook_order(case):
    lr_config, by_epoch = SIMSIAM_CASES[case]
    cfg = dict(optimizer=dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=1e-4,
                              paramwise_options={"predictor": dict(fix_lr=True)}),
               lr_config=lr_config, runner=dict(type="EpochBasedRunner", max_epochs=8),
               custom_hooks=[dict(type="SimSiamHook", fix_pred_lr=True, lr=0.02,
                                  adjust_by_epoch=by_epoch)])
    values, grads = initial_values(), gradients(40)
    ours, lrs, _, _ = run_jax(cfg, values, grads, 5)
    ref, ref_lrs, _, _ = run_torch(cfg, values, grads, 5)
    assert rel_error(lrs, ref_lrs) <= 1e-6
    assert param_error(ours[-1], ref[-1]) <= 1e-5


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, float("inf")])
def test_clip_grad_norm_matches_torch_over_leaves_with_a_gradient(norm_type):
    rng = np.random.default_rng(3)
    grads = {k: rng.normal(size=s).astype(np.float32) for k, s in
             [("a", (5, 4)), ("b", (7,)), ("c", ()), ("frozen", (3, 3))]}
    mask = {"a": True, "b": True, "c": True, "frozen": False}
    clip = oss.clip_grad_norm(0.7, norm_type)
    tree = {k: jnp.asarray(v) for k, v in grads.items()}
    out, state = clip.update(tree, clip.init(tree), grad_mask={k: jnp.asarray(v)
                                                              for k, v in mask.items()})
    params = [torch.nn.Parameter(torch.zeros(v.shape)) for k, v in grads.items() if mask[k]]
    for p, k in zip(params, [k for k in grads if mask[k]]):
        p.grad = torch.tensor(grads[k])
    total = torch.nn.utils.clip_grad_norm_(params, 0.7, norm_type)
    assert float(state.grad_norm) == pytest.approx(float(total), rel=1e-6)
    for p, k in zip(params, [k for k in grads if mask[k]]):
        np.testing.assert_allclose(np.asarray(out[k]), p.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_accumulation_state_holds_one_buffer_and_no_params_copy():
    cfg = oss.load_config("configs/selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py")
    tree = nest({k: jnp.zeros(s) for k, s in MODEL.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = oss.build_optimizer(cfg, tree, steps_per_epoch=10)
    state = tx.init(tree)
    param_size = sum(x.size for x in jax.tree.leaves(tree))
    state_size = sum(x.size for x in jax.tree.leaves(state))
    # accumulator + LARS momentum buffer, plus per-leaf scalars (steps, lr, momentum, clock)
    assert 2 * param_size <= state_size <= 2 * param_size + 4 * len(MODEL) + 2


def test_torch_reads_one_adagrad_initial_accumulator_value_and_checks_no_group():
    """Why such rules are refused: torch fills every group's Adagrad ``sum`` from the
    constructor's value (a group's own is ignored), and checks nesterov only for the
    optimizer's own arguments (a group's nesterov without momentum runs)."""
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    adagrad = torch.optim.Adagrad([dict(params=[p]), dict(params=[q],
                                                          initial_accumulator_value=0.5)],
                                  initial_accumulator_value=0.1)
    assert torch.all(adagrad.state[q]["sum"] == 0.1)
    torch.optim.SGD([dict(params=[p]), dict(params=[q], nesterov=True)], lr=0.1)  # no error
    lars = torch_ref.LARS([dict(params=[p]), dict(params=[q], eps=1.0)], lr=0.1)
    p.grad, q.grad = torch.ones(2), torch.ones(2)
    with torch.no_grad():
        p.fill_(1.0), q.fill_(1.0)
    lars.step()
    assert torch.equal(p, q)  # MMSelfSup's LARS: one self.eps, the group's is ignored
