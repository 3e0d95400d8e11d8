"""MMEngine / MMPretrain param groups (``paramwise/custom_keys.py``, ``layer_depth.py``,
``module_kinds.py``) against the real constructors.

Every expected group comes from upstream code: ``torch_ref.mmengine.run_mmengine`` (MMEngine's
Runner builds the optimizer with the real ``DefaultOptimWrapperConstructor`` or MMPretrain's
``LearningRateDecayOptimWrapperConstructor`` on a torch model with real module types),
``upstream_layer_depth`` (MMPretrain's own ``get_layer_depth``), or
``data/mmengine_paramwise.json.gz``: the groups the real constructors built on the real
MMPretrain 1.2.0 models of every real config (``tools/mmpretrain_trees.py``).
"""

from __future__ import annotations

import gzip
import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optax_selfsup.errors import ConfigError
from optax_selfsup.paramwise import (
    ModuleKinds,
    guess_module_kinds,
    layer_depth_fn,
    optim_wrapper_groups,
)
from optax_selfsup.paramwise.mmpretrain_archs import BACKBONES
from torch_ref.mmengine import run_mmengine, upstream_layer_depth

DATA = Path(__file__).resolve().parent / "data" / "mmengine_paramwise.json.gz"

# A model with every kind of parameter MMEngine's rules tell apart (torch layout, registration
# order), and the module types that own them.
TREE = {
    "cls_token": (1, 1, 4),                       # on the root: tested as '.cls_token'
    "scale0d": (),                                # 0-d: not flat
    "backbone.conv1.weight": (4, 3, 3, 3),
    "backbone.conv1.bias": (4,),
    "backbone.bn1.weight": (4,),
    "backbone.bn1.bias": (4,),
    "backbone.dw.weight": (4, 1, 3, 3),
    "backbone.dw.bias": (4,),
    "backbone.gconv.weight": (4, 2, 1, 1),         # grouped, not depthwise
    "backbone.layers.0.ln1.weight": (4,),
    "backbone.layers.0.ln1.bias": (4,),
    "backbone.layers.0.attn.q_bias": (4,),
    "backbone.layers.0.attn.relative_position_bias_table": (3, 2),
    "backbone.layers.0.gamma": (4,),
    "backbone.layers.0.abba.weight": (4, 4),
    "backbone.gn.weight": (4,),
    "backbone.gn.bias": (4,),
    "backbone.inorm.weight": (4,),
    "backbone.inorm.bias": (4,),
    "neck.norm.weight": (4,),                     # a plain module named like a norm
    "neck.affine.weight": (4,),                   # a plain module shaped like a norm
    "neck.affine.bias": (4,),
    "head.fc.weight": (2, 4),
    "head.fc.bias": (2,),
}
MODULES = {"backbone.conv1": ("conv", 4, 3, 3), "backbone.bn1": ("bn", 4),
           "backbone.dw": ("dwconv", 4, 3), "backbone.gconv": ("conv", 4, 4, 1, 2),
           "backbone.layers.0.ln1": ("ln", 4), "backbone.gn": ("gn", 2, 4),
           "backbone.inorm": ("in", 4), "backbone.layers.0.abba": ("linear", 4, 4),
           "neck.norm": ("module",), "neck.affine": ("module",), "head.fc": ("linear", 2, 4)}
NORM = {"backbone.bn1", "backbone.layers.0.ln1", "backbone.gn", "backbone.inorm"}
KINDS = ModuleKinds(frozenset(n for n in TREE if n.rpartition(".")[0] in NORM),
                    frozenset(("backbone.dw.weight", "backbone.dw.bias")))


def values_of(tree):
    return {k: np.zeros(s, np.float32) for k, s in tree.items()}


def upstream(optim_wrapper, tree=TREE, modules=MODULES, frozen=(), model=None,
             scope=None):
    cfg = dict(optim_wrapper=optim_wrapper, train_cfg=dict(type="IterBasedTrainLoop",
                                                           max_iters=1))
    if model is not None:
        cfg["model"] = model
    if scope is not None:
        cfg["default_scope"] = scope
    return run_mmengine(cfg, values_of(tree), [{}], steps_per_epoch=1, modules=modules,
                        frozen=frozen)


def assert_same_groups(ours, run, optimizer, frozen=()):
    """Our groups == the groups the real constructor built, key by key, in its order."""
    built = run.groups
    groups = run.optimizer_state["param_groups"]
    if not ours.per_parameter:
        assert len(groups) == 1
        assert set(ours.names) == set(run.names)
        return
    assert len(groups) == len(ours.names)
    order = sorted(built, key=run.param_index.__getitem__)
    assert list(ours.names) == order
    assert set(ours.left_out) == set(frozen)
    for name in ours.names:
        mine = ours.resolved(name, optimizer)
        theirs = built[name]
        for key, value in mine.items():
            if key != "type":
                assert theirs[key] == value, (name, key, theirs[key], value)
        for key in set(theirs) - set(mine):  # set by torch from its own defaults only
            assert key not in optimizer, (name, key)


SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4)
PARAMWISE = [
    None, {},
    dict(norm_decay_mult=0.0), dict(bias_decay_mult=0.5), dict(bias_lr_mult=2.0),
    dict(dwconv_decay_mult=0.1), dict(flat_decay_mult=0.25), dict(bypass_duplicate=True),
    dict(norm_decay_mult=0.0, bias_decay_mult=0.5, dwconv_decay_mult=0.1, flat_decay_mult=0.25,
         bias_lr_mult=2.0),
    dict(custom_keys={"ab": dict(lr_mult=0.5), "ba": dict(lr_mult=3.0),
                      "abba": dict(decay_mult=0.0, lr_mult=4.0), "bias": dict(decay_mult=2.0)},
         norm_decay_mult=0.0),
    dict(custom_keys={".cls_token": dict(decay_mult=0.0), "q_bias": dict(lars_exclude=True),
                      "gamma": dict(lr=0.5, momentum=0.0, fix_lr=True),
                      "relative_position": dict(weight_decay=0.3, decay_mult=0.0)},
         bias_lr_mult=2.0, flat_decay_mult=0.0),
    dict(custom_keys={"cls_token": dict(lr_mult=0.1), "bn": dict(decay_mult=0.0)},
         dwconv_decay_mult=0.0),
]


@pytest.mark.parametrize("paramwise_cfg", PARAMWISE)
def test_default_constructor_matches_mmengine(paramwise_cfg):
    ow = dict(optimizer=SGD, paramwise_cfg=paramwise_cfg)
    ours = optim_wrapper_groups(ow, list(TREE), list(TREE.values()), kinds=KINDS)
    assert_same_groups(ours, upstream(ow), SGD)


def test_custom_key_ties_and_root_parameter():
    # 'ab' / 'ba' tie in length (alphabetical first), 'abba' is longer; a root parameter is
    # tested as '.cls_token', so '.cls_token' matches it and 'token.' does not.
    cfg = dict(custom_keys={"ba": dict(lr_mult=3.0), "ab": dict(lr_mult=0.5),
                            ".cls_token": dict(lr_mult=7.0), "token.": dict(lr_mult=9.0)})
    ow = dict(optimizer=SGD, paramwise_cfg=cfg)
    ours = optim_wrapper_groups(ow, list(TREE), list(TREE.values()), kinds=KINDS)
    assert ours.group("backbone.layers.0.abba.weight")["lr_mult"] == 0.5
    assert ours.group("cls_token")["lr_mult"] == 7.0
    assert_same_groups(ours, upstream(ow), SGD)


def test_frozen_left_out_only_with_paramwise_cfg():
    frozen = ("backbone.conv1.weight", "head.fc.bias")
    for cfg in (None, dict(norm_decay_mult=0.0)):
        ow = dict(optimizer=SGD, paramwise_cfg=cfg)
        ours = optim_wrapper_groups(ow, list(TREE), list(TREE.values()), kinds=KINDS,
                                    frozen=frozen)
        run = upstream(ow, frozen=frozen)
        assert_same_groups(ours, run, SGD, frozen=frozen if cfg else ())
        assert ("backbone.conv1.weight" in ours.names) == (cfg is None)


def test_without_weight_decay():
    opt = dict(type="SGD", lr=0.1, momentum=0.9)
    for cfg in (dict(bias_lr_mult=2.0, custom_keys={"head": dict(lr_mult=0.1)}),
                dict(flat_decay_mult=0.0)):
        ow = dict(optimizer=opt, paramwise_cfg=cfg)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours = optim_wrapper_groups(ow, list(TREE), list(TREE.values()), kinds=KINDS)
        assert ("flat_decay_mult has no effect" in str([w.message for w in caught])) == (
            "flat_decay_mult" in cfg)
        assert_same_groups(ours, upstream(ow), opt)
    for cfg in (dict(norm_decay_mult=0.0), dict(bias_decay_mult=0.0), dict(dwconv_decay_mult=0.),
                dict(custom_keys={"head": dict(decay_mult=0.0)})):
        ow = dict(optimizer=opt, paramwise_cfg=cfg)
        with pytest.raises(ValueError, match="base_wd should not be None"):
            upstream(ow)
        with pytest.raises(ConfigError, match="weight_decay"):
            optim_wrapper_groups(ow, list(TREE), list(TREE.values()), kinds=KINDS)


def test_unknown_keys_are_ignored_with_a_warning():
    # The twins configs write `_delete=True` inside paramwise_cfg: MMEngine ignores the key.
    for key in ("_delete", "norm_decay_mul"):
        cfg = {key: True, "bias_decay_mult": 0.0}
        ow = dict(optimizer=SGD, paramwise_cfg=cfg)
        with pytest.warns(UserWarning, match=key):
            ours = optim_wrapper_groups(ow, list(TREE), list(TREE.values()), kinds=KINDS)
        assert_same_groups(ours, upstream(ow), SGD)


MULTS = st.sampled_from([0.0, 0.5, 2.0, 1e-3])
KEY_POOL = ["bias", "ab", "ba", "abba", ".cls_token", "cls", "bn", "ln1", "layers.0", "norm",
            "backbone", "head", ".", "weight", "gamma", "q_", "relative", "neck.a", "token"]
CUSTOM = st.fixed_dictionaries({}, optional={"lr_mult": MULTS, "decay_mult": MULTS,
                                             "momentum": MULTS, "lars_exclude": st.booleans()})
PARAMWISE_CFGS = st.fixed_dictionaries({}, optional={
    **{k: MULTS for k in ("norm_decay_mult", "bias_decay_mult", "dwconv_decay_mult",
                          "flat_decay_mult", "bias_lr_mult")},
    "custom_keys": st.dictionaries(st.sampled_from(KEY_POOL), CUSTOM, max_size=4)})


@cache
def torch_tree():
    import torch

    from torch_ref.mmengine import build_model

    return build_model(values_of(TREE), MODULES, torch.float32)


@settings(max_examples=60, deadline=None)
@given(PARAMWISE_CFGS, st.booleans())
def test_default_constructor_property(paramwise_cfg, with_wd):
    """Random paramwise_cfgs on the mixed tree: the real constructor's add_params, called
    directly, and ours agree (or both refuse)."""
    from mmengine.optim import DefaultOptimWrapperConstructor

    optimizer = dict(SGD) if with_wd else dict(type="SGD", lr=0.1, momentum=0.9)
    ow = dict(optimizer=optimizer, paramwise_cfg=paramwise_cfg)
    try:
        ctor = DefaultOptimWrapperConstructor(dict(optimizer=optimizer), paramwise_cfg)
    except ValueError:
        with pytest.raises(ConfigError):
            optim_wrapper_groups(ow, list(TREE), list(TREE.values()), kinds=KINDS)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = optim_wrapper_groups(ow, list(TREE), list(TREE.values()), kinds=KINDS)
    assert ours.per_parameter == bool(paramwise_cfg)
    if not paramwise_cfg:
        return
    model = torch_tree()
    params: list = []
    ctor.add_params(params, model)
    names = {id(p): n for n, p in model.named_parameters()}
    theirs = {names[id(g.pop("params")[0])]: g for g in params}
    assert list(ours.names) == list(theirs)
    assert dict(zip(ours.names, ours.groups)) == theirs


# -- module kinds ------------------------------------------------------------------------------

def test_guessed_kinds_on_the_mixed_tree():
    kinds = guess_module_kinds(list(TREE), list(TREE.values()))
    assert kinds.dwconv == KINDS.dwconv
    # plain modules named or shaped like norm layers are guessed wrong, and flagged
    wrong = {"neck.norm.weight", "neck.affine.weight", "neck.affine.bias"}
    assert kinds.norm ^ KINDS.norm == wrong
    ow = dict(optimizer=SGD, paramwise_cfg=dict(norm_decay_mult=0.0))
    ours = optim_wrapper_groups(ow, list(TREE), list(TREE.values()), kinds=kinds)
    assert wrong <= set(ours.depends_on_guess)
    assert "backbone.conv1.bias" in ours.depends_on_guess  # 1-d: a guess either way
    assert "head.fc.weight" not in ours.depends_on_guess
    explicit = guess_module_kinds(list(TREE), list(TREE.values()),
                                  norm_layers=[r"backbone\.(bn1|gn|inorm)", r".*\.ln\d"])
    assert explicit.norm == KINDS.norm and not explicit.guessed_norm
    assert_same_groups(optim_wrapper_groups(ow, list(TREE), list(TREE.values()),
                                            kinds=explicit), upstream(ow), SGD)


def test_flax_kernel_layout_for_depthwise():
    names = ["dw.weight", "conv.weight"]
    kinds = guess_module_kinds(names, [(3, 3, 1, 8), (3, 3, 8, 1)],
                               raw_names=["dw.kernel", "conv.kernel"])
    assert kinds.dwconv == {"dw.weight"}


def test_nnx_and_linen_module_kinds_match_torch_types():
    import jax.numpy as jnp
    from flax import linen as nn
    from flax import nnx

    from optax_selfsup.paramwise import module_kinds_from_linen, module_kinds_from_nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.dw = nnx.Conv(4, 4, (3, 3), feature_group_count=4, rngs=rngs)
            self.pw = nnx.Conv(4, 4, (1, 1), rngs=rngs)
            self.bn = nnx.BatchNorm(4, rngs=rngs)
            self.ln = nnx.LayerNorm(4, rngs=rngs)
            self.gn = nnx.GroupNorm(4, num_groups=2, rngs=rngs)
            self.rms = nnx.RMSNorm(4, rngs=rngs)  # not a norm layer for MMEngine
            self.fc = nnx.Linear(4, 2, rngs=rngs)

    kinds = module_kinds_from_nnx(Block(nnx.Rngs(0)))
    assert kinds.norm == {f"{m}.{p}" for m in ("bn", "ln", "gn") for p in ("weight", "bias")}
    assert kinds.dwconv == {"dw.weight", "dw.bias"}

    class LBlock(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(4, (3, 3), feature_group_count=4, name="dw")(x)
            x = nn.BatchNorm(use_running_average=True)(x)
            x = nn.LayerNorm(name="norm")(x)
            return nn.Dense(2, name="fc")(nn.RMSNorm(name="rms")(x))

    lkinds = module_kinds_from_linen(LBlock(), jnp.zeros((1, 8, 8, 4)))
    assert lkinds.norm == {"bn0.weight", "bn0.bias", "norm.weight", "norm.bias"}
    assert lkinds.dwconv == {"dw.weight", "dw.bias"}
    # the same module types in torch: MMEngine's groups agree with ours
    tree = {"dw.weight": (4, 1, 3, 3), "dw.bias": (4,), "bn0.weight": (4,), "bn0.bias": (4,),
            "norm.weight": (4,), "norm.bias": (4,), "rms.weight": (4,), "fc.weight": (2, 4),
            "fc.bias": (2,)}
    modules = {"dw": ("dwconv", 4, 3), "bn0": ("bn", 4), "norm": ("ln", 4), "rms": ("module",),
               "fc": ("linear", 2, 4)}
    ow = dict(optimizer=SGD, paramwise_cfg=dict(norm_decay_mult=0.0, dwconv_decay_mult=0.5,
                                                bias_lr_mult=2.0))
    ours = optim_wrapper_groups(ow, list(tree), list(tree.values()), kinds=lkinds)
    assert_same_groups(ours, upstream(ow, tree, modules), SGD)


# -- layer depth: our rules against MMPretrain's get_layer_depth --------------------------------

def probe_names(rule, facts):
    """Names across a backbone's whole scheme (and outside it) for ``facts`` of its arch."""
    b = "backbone."
    tail = [b + "ln1.weight", b + "norm3.bias", "head.fc.weight", "neck.proj.weight"]
    if rule in ("vit", "hivit"):
        n = facts
        return [b + "cls_token", b + "pos_embed", b + "patch_embed.projection.weight",
                b + "layers.0.ln1.weight", f"{b}layers.{n - 1}.ffn.layers.0.0.bias",
                b + "blocks.3.mlp.fc1.weight", b + "embed", b + "fc_norm.weight"] + tail
    if rule == "swin":
        out = [b + "patch_embed.projection.weight", b + "absolute_pos_embed"]
        for s, d in enumerate(facts):
            out += [f"{b}stages.{s}.blocks.{k}.norm1.weight" for k in (0, d - 1)]
            out += [f"{b}stages.{s}.downsample.{m}.weight" for m in ("norm", "reduction")]
        return out + tail
    if rule == "convnext":
        out = [f"{b}downsample_layers.{s}.0.weight" for s in range(4)]
        for s, d in enumerate(facts):
            out += [f"{b}stages.{s}.{k}.depthwise_conv.weight" for k in range(d)]
        return out + tail
    if rule == "resnet":
        out = [b + "conv1.weight", b + "stem.0.weight", b + "bn1.bias"]
        for s, d in enumerate(facts, 1):
            out += [f"{b}layer{s}.{k}.conv1.weight" for k in range(d)]
        return out + tail + [b + "layer1.0.downsample.1.weight"]
    out = [b + "patch_embed.projection.weight", b + "absolute_pos_embed", b + "x.pos_embed"]
    for i, d in enumerate(facts):
        out += [f"{b}layers.{i}.blocks.{k}.norm1.weight" for k in (0, d - 1)]
        out += [f"{b}layers.{i}.downsample.{m}.weight" for m in ("norm", "reduction")]
    return out + tail


def arch_cases():
    for btype, entry in sorted(BACKBONES.items()):
        for arch, facts in entry["archs"].items():
            key = "depth" if entry["rule"] == "resnet" and btype != "RegNet" else "arch"
            yield pytest.param(btype, {key: arch}, entry["rule"], facts, id=f"{btype}-{arch}")


@pytest.mark.parametrize(("btype", "arch", "rule", "facts"), list(arch_cases()))
def test_layer_depth_matches_mmpretrain(btype, arch, rule, facts):
    model = dict(type="ImageClassifier", backbone=dict(type=btype, **arch))
    if btype == "RegNet" or (btype == "MoCoV3ViT" and arch["arch"].startswith("mocov3")):
        pytest.skip("the harness reads arch tables from the class body: RegNet computes its "
                    "stage blocks and MoCoV3ViT adds 'mocov3-small' in __init__")
    theirs = upstream_layer_depth(model)
    if rule == "hivit":  # HiViT counts its blocks in get_layer_depth: give the backbone them
        theirs.__self__.backbone.blocks = [None] * facts
    if rule == "resnet" and tuple(facts[1:3]) not in ((4, 6), (4, 23), (8, 36), (24, 36),
                                                      (30, 48)):
        with pytest.raises(NotImplementedError):
            theirs("backbone.layer1.0.conv1.weight")
        with pytest.raises(ConfigError, match="no layer-decay grouping"):
            layer_depth_fn(model)("backbone.layer1.0.conv1.weight")
        return
    ours = layer_depth_fn(model)
    for name in probe_names(rule, facts):
        assert ours(name) == tuple(theirs(name)), name


@pytest.mark.parametrize(("model", "name"), [
    (dict(backbone=dict(type="VisionTransformer", arch="b")), "backbone.layers.x.ln1.weight"),
    (dict(backbone=dict(type="SwinTransformer", arch="t")), "backbone.stages.0.blocks"),
    (dict(backbone=dict(type="ConvNeXt", arch="tiny")), "backbone.stages.1.gamma"),
    (dict(backbone=dict(type="ResNet", depth=50)), "backbone.layers.0.conv1.weight"),
    (dict(backbone=dict(type="MixMIMTransformer", arch="b")), "backbone.layers.0.blocks"),
])
def test_names_upstream_cannot_parse_are_refused(model, name):
    model = dict(type="ImageClassifier", **model)
    with pytest.raises((ValueError, IndexError)):
        upstream_layer_depth(model)(name)
    with pytest.raises(ConfigError, match=repr(name)):
        layer_depth_fn(model)(name)


def test_index_beyond_the_arch_is_refused():
    model = dict(type="ImageClassifier", backbone=dict(type="VisionTransformer", arch="b"))
    assert upstream_layer_depth(model)("backbone.layers.12.ln1.weight") == (13, 14)
    with pytest.raises(ConfigError, match="layer 12 of a 12-layer arch"):
        layer_depth_fn(model)("backbone.layers.12.ln1.weight")


# -- layer decay groups: the real constructor on real-named trees -------------------------------

LD = "LearningRateDecayOptimWrapperConstructor"
ADAMW = dict(type="AdamW", lr=4e-3, weight_decay=0.05)
LD_CFG = dict(layer_decay_rate=0.65, norm_decay_mult=0.0, bias_decay_mult=0.5,
              flat_decay_mult=0.25, custom_keys={".cls_token": dict(decay_mult=0.0),
                                                 "pos_embed": dict(decay_mult=0.0, lr_mult=3.0),
                                                 "gamma": dict(momentum=0.5, lr=9.0)})


def vit_tree(last):
    tree = {"backbone.cls_token": (1, 1, 4), "backbone.pos_embed": (1, 2, 4),
            "backbone.patch_embed.projection.weight": (4, 3, 2, 2),
            "backbone.patch_embed.projection.bias": (4,)}
    for i in (0, 1, last):
        tree |= {f"backbone.layers.{i}.ln1.weight": (4,), f"backbone.layers.{i}.ln1.bias": (4,),
                 f"backbone.layers.{i}.attn.qkv.weight": (12, 4),
                 f"backbone.layers.{i}.gamma": (4,),
                 f"backbone.layers.{i}.ffn.layers.1.bias": (4,)}
    tree |= {"backbone.ln1.weight": (4,), "backbone.ln1.bias": (4,), "head.layers.head.weight":
             (2, 4), "head.layers.head.bias": (2,), "cls_token": (1, 4)}
    modules = {n.rpartition(".")[0]: ("ln", 4) for n in tree if ".ln1." in n}
    return tree, modules


LAYER_DECAY_TREES = {
    "vit-b": (dict(type="VisionTransformer", arch="b"), *vit_tree(11)),
    "vit-l": (dict(type="VisionTransformer", arch="large"), *vit_tree(23)),
    "vit-h": (dict(type="VisionTransformer", arch="h"), *vit_tree(31)),
    "beit-b": (dict(type="BEiTViT", arch="base"), *vit_tree(11)),
    "swin-b": (dict(type="SwinTransformer", arch="base"),
               {"backbone.patch_embed.projection.weight": (4, 3, 2, 2),
                "backbone.absolute_pos_embed": (1, 2, 4),
                "backbone.stages.0.blocks.1.norm1.weight": (4,),
                "backbone.stages.0.blocks.1.attn.w_msa.relative_position_bias_table": (3, 2),
                "backbone.stages.0.downsample.norm.weight": (4,),
                "backbone.stages.0.downsample.reduction.weight": (4, 8),
                "backbone.stages.2.blocks.17.norm2.bias": (4,),
                "backbone.norm3.weight": (4,), "head.fc.weight": (2, 4)},
               {"backbone.stages.0.blocks.1.norm1": ("ln", 4),
                "backbone.stages.0.downsample.norm": ("ln", 4),
                "backbone.stages.2.blocks.17.norm2": ("ln", 4), "backbone.norm3": ("ln", 4)}),
    "convnext-t": (dict(type="ConvNeXt", arch="tiny"),
                   {"backbone.downsample_layers.0.0.weight": (4, 3, 2, 2),
                    "backbone.downsample_layers.0.1.weight": (4,),
                    "backbone.downsample_layers.0.1.bias": (4,),
                    "backbone.downsample_layers.3.1.weight": (4,),
                    "backbone.downsample_layers.3.1.bias": (4,),
                    "backbone.stages.2.8.depthwise_conv.weight": (4, 1, 1, 1),
                    "backbone.stages.2.8.gamma": (4,), "backbone.stages.3.2.norm.weight": (4,),
                    "backbone.norm3.weight": (4,), "head.fc.bias": (2,)},
                   {"backbone.downsample_layers.0.1": ("ln", 4),
                    "backbone.downsample_layers.3.1": ("ln", 4),
                    "backbone.stages.2.8.depthwise_conv": ("dwconv", 4, 1),
                    "backbone.stages.3.2.norm": ("ln", 4), "backbone.norm3": ("ln", 4)}),
    "resnet-152": (dict(type="ResNet", depth=152),
                   {"backbone.conv1.weight": (4, 3, 1, 1), "backbone.bn1.weight": (4,),
                    "backbone.layer1.0.downsample.1.bias": (4,),
                    "backbone.layer2.7.conv1.weight": (4, 4, 1, 1),
                    "backbone.layer3.35.bn3.weight": (4,),
                    "backbone.layer4.2.conv2.weight": (4, 4, 1, 1), "head.fc.bias": (2,)},
                   {"backbone.bn1": ("bn", 4), "backbone.layer1.0.downsample.1": ("bn", 4),
                    "backbone.layer3.35.bn3": ("bn", 4)}),
    "mixmim-b": (dict(type="MixMIMTransformer", arch="b"),
                 {"backbone.patch_embed.projection.weight": (4, 3, 1, 1),
                  "backbone.absolute_pos_embed": (1, 2, 4),
                  "backbone.layers.2.blocks.17.norm1.weight": (4,),
                  "backbone.layers.2.downsample.norm.bias": (4,), "backbone.norm.weight": (4,),
                  "neck.fc.weight": (2, 4), "head.fc.weight": (2, 4)},
                 {"backbone.layers.2.blocks.17.norm1": ("ln", 4),
                  "backbone.layers.2.downsample.norm": ("ln", 4), "backbone.norm": ("ln", 4)}),
}


@pytest.mark.parametrize("case", list(LAYER_DECAY_TREES))
def test_layer_decay_matches_mmpretrain(case):
    backbone, tree, modules = LAYER_DECAY_TREES[case]
    model = dict(type="ImageClassifier", backbone=backbone)
    ow = dict(optimizer=ADAMW, constructor=LD, paramwise_cfg=LD_CFG)
    frozen = (list(tree)[1],)
    with pytest.warns(UserWarning, match="lr_mult has no effect"):
        ours = optim_wrapper_groups(ow, list(tree), list(tree.values()), model_cfg=model,
                                    default_scope="mmpretrain", frozen=frozen)
    run = upstream(ow, tree, modules, frozen=frozen, model=model, scope="mmpretrain")
    assert_same_groups(ours, run, ADAMW, frozen=frozen)


def test_layer_decay_refusals_match_upstream_failures():
    tree, modules = vit_tree(11)
    names, shapes = list(tree), list(tree.values())
    model = dict(type="ImageClassifier", backbone=dict(type="VisionTransformer", arch="b"))
    no_wd = dict(optimizer=dict(type="AdamW", lr=1e-3), constructor=LD,
                 paramwise_cfg=dict(layer_decay_rate=0.7))
    with pytest.raises(KeyError, match="weight_decay"):
        upstream(no_wd, tree, modules, model=model, scope="mmpretrain")
    with pytest.raises(ConfigError, match="weight_decay"):
        optim_wrapper_groups(no_wd, names, shapes, model_cfg=model, default_scope="mmpretrain")
    ow = dict(optimizer=ADAMW, constructor=LD, paramwise_cfg=dict(layer_decay_rate=0.7))
    for scope in ("mmengine", None):
        with pytest.raises(KeyError):
            upstream(ow, tree, modules, model=model, scope=scope)
        with pytest.raises(ConfigError, match="default_scope='mmpretrain'"):
            optim_wrapper_groups(ow, names, shapes, model_cfg=model, default_scope=scope)
    with pytest.raises(ConfigError, match="MMSelfSup 1.0's constructor"):
        optim_wrapper_groups(ow, names, shapes, model_cfg=model, default_scope="mmselfsup")
    retriever = dict(type="ImageToImageRetriever", backbone=model["backbone"])
    with pytest.raises(NotImplementedError):
        upstream(ow, tree, modules, model=retriever, scope="mmpretrain")
    with pytest.raises(ConfigError, match="no get_layer_depth"):
        optim_wrapper_groups(ow, names, shapes, model_cfg=retriever, default_scope="mmpretrain")
    flax_named = [n.replace("layers.", "blocks_") for n in names]
    with pytest.raises(ConfigError, match="no parameter is named like"):
        optim_wrapper_groups(ow, flax_named, shapes, model_cfg=model, default_scope="mmpretrain")
    # an empty paramwise_cfg: one group, as the inherited __call__ (no model needed)
    single = optim_wrapper_groups(dict(ow, paramwise_cfg={}), names, shapes,
                                  default_scope="mmpretrain")
    assert not single.per_parameter


# -- every real config -------------------------------------------------------------------------

@cache
def recorded():
    return json.loads(gzip.decompress(DATA.read_bytes()))


def real_combos():
    data = recorded()
    for combo in data["combos"]:
        yield pytest.param(combo, id=combo["configs"][0].split("/", 1)[1])


def exact_kinds(tree) -> ModuleKinds:
    names = tree["names"]
    return ModuleKinds(frozenset(names[i] for i in tree["norm"]),
                       frozenset(names[i] for i in tree["dwconv"]))


def test_real_configs_match_the_real_constructors():
    """Every distinct (model, optim_wrapper, default_scope) of the real 1.x configs: our groups
    == the groups the real constructor built on the real MMPretrain model, with the module
    kinds it had and with the kinds guessed from the names (then every difference is flagged
    in depends_on_guess)."""
    data = recorded()
    checked = 0
    for combo in data["combos"]:
        ow, up = combo["optim_wrapper"], combo["upstream"]
        if "single" in up:
            ours = optim_wrapper_groups(ow, ["a.weight"], [(1,)], default_scope=combo["scope"])
            assert not ours.per_parameter, combo["configs"]
            continue
        tree = data["trees"][combo["tree"]]
        names, shapes = tree["names"], tree["shapes"]
        frozen = [names[i] for i in tree["frozen"]]
        expected = {n: up["table"][g] for n, g in zip(names, up["group"]) if g >= 0}
        for kinds in (exact_kinds(tree), None):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours = optim_wrapper_groups(ow, names, shapes, model_cfg=combo.get("model_cfg"),
                                            default_scope=combo["scope"], kinds=kinds,
                                            frozen=frozen)
            assert list(ours.names) == [n for n in names if n in expected], combo["configs"]
            for name, group in zip(ours.names, ours.groups):
                if kinds is None and name in ours.depends_on_guess:
                    continue
                assert group == expected[name], (combo["configs"][0], name)
        checked += 1
    assert checked == 236 and len(data["combos"]) == 405


def harness_model(tree):
    """The recorded tree as harness values and module specs (norm layers and depthwise convs
    typed; everything else a plain module, so nothing is inferred)."""
    names, shapes = tree["names"], [tuple(s) for s in tree["shapes"]]
    values, modules = {}, {}
    for i, (name, shape) in enumerate(zip(names, shapes)):
        path = name.rpartition(".")[0]
        if i in tree["norm"]:
            modules[path] = ("ln", shape) if len(shape) > 1 else ("bn", shape[0])
        elif i in tree["dwconv"]:
            c = shape[0]
            modules[path] = ("dwconv", c, 1)
            shape = (c, 1, 1, 1) if len(shape) == 4 else shape
        elif path:
            modules[path] = ("module",)
        values[name] = np.zeros(shape, np.float32)
    return values, modules


SAMPLE = ("barlowtwins_resnet50_8xb256-coslr-1000e", "mae_vit-base-p16_8xb512-amp")


def test_recorded_groups_agree_with_the_live_harness():
    """The recorded groups are what the live harness (real constructor, our declared module
    types) builds too: one layer-decay config per backbone arch and two others (all: ``slow``)."""
    data = recorded()
    picked, archs = [], set()
    for combo in data["combos"]:
        if "table" not in combo["upstream"]:
            continue
        backbone = json.dumps(combo["model_cfg"].get("backbone"), sort_keys=True)
        if combo["optim_wrapper"].get("constructor") == LD and backbone not in archs:
            archs.add(backbone)
            picked.append(combo)
        elif any(s in combo["configs"][0] for s in SAMPLE):
            picked.append(combo)
    assert len(archs) == 9 and len(picked) == 11
    for combo in picked:
        check_live(data, combo)


@pytest.mark.slow
def test_all_recorded_groups_agree_with_the_live_harness():
    data = recorded()
    for combo in data["combos"]:
        if "table" in combo["upstream"]:
            check_live(data, combo)


def check_live(data, combo):
    tree = data["trees"][combo["tree"]]
    values, modules = harness_model(tree)
    cfg = dict(optim_wrapper=combo["optim_wrapper"],
               train_cfg=dict(type="IterBasedTrainLoop", max_iters=1),
               default_scope=combo["scope"], model=combo.get("model_cfg"))
    frozen = [tree["names"][i] for i in tree["frozen"]]
    run = run_mmengine(cfg, values, [values], steps_per_epoch=1, modules=modules, frozen=frozen)
    up = combo["upstream"]
    for name, g in zip(tree["names"], up["group"]):
        if g >= 0:
            built = run.groups[name]
            assert all(built[k] == v for k, v in up["table"][g].items()), (combo["configs"], name)


def test_guessed_kinds_on_every_real_model():
    """On the real model of every real config (module types recorded from MMPretrain's
    classes), the name/shape guess finds exactly the norm layers and depthwise convs MMEngine
    sees, except HorNet's own HorNetLayerNorm (no torch norm type: MMEngine does not count it)."""
    data = recorded()
    classes = data["module_classes"]
    wrong = set()
    for tree in data["trees"].values():
        names, shapes = tree["names"], tree["shapes"]
        kinds = guess_module_kinds(names, shapes)
        truth = exact_kinds(tree)
        assert kinds.dwconv == truth.dwconv
        wrong |= {classes[tree["modules"][names.index(n)]] for n in kinds.norm ^ truth.norm}
        assert set(kinds.guessed_norm) == {n for n, s in zip(names, shapes) if len(s) == 1}
    assert wrong == {"HorNetLayerNorm"}
