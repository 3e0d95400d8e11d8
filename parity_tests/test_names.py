"""The Flax -> torch name maps against the names of real torch modules.

The torch side is torch_ref's models, named as MMSelfSup 0.11's (``SmallResNet``:
``conv1, bn1, layer{s}.{b}.conv1/bn1/conv2/bn2/downsample.0/downsample.1``;
``NonLinearNeck``: ``fc0, bn0, fc1, bn1``). The Flax side is written the way Flax
users write models: the ResNet of Flax's own ImageNet example (``conv_init``,
``bn_init``, ``ResNetBlock_i`` with auto-named ``Conv_j`` / ``BatchNorm_j``,
``conv_proj`` / ``norm_proj``, ``Dense_0``) and a neck built with Linen's auto-names.
Both maps must give the torch names, and the SimCLR config must then select the same
tensors as torch_ref's param groups do.
"""

from __future__ import annotations

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optax_selfsup as oss
import torch_ref
from torch_ref import models as tm

SIMCLR = "configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"
MAE = "configs/selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py"
WIDTHS = (8, 16, 32, 64)


class ResNetBlock(nn.Module):
    """Flax's examples/imagenet ResNetBlock (auto-named layers, named shortcut)."""

    filters: int
    strides: tuple = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = nn.Conv(self.filters, (3, 3), self.strides, use_bias=False)(x)
        y = nn.relu(nn.BatchNorm(use_running_average=False)(y))
        y = nn.Conv(self.filters, (3, 3), use_bias=False)(y)
        y = nn.BatchNorm(use_running_average=False)(y)
        if residual.shape != y.shape:
            residual = nn.Conv(self.filters, (1, 1), self.strides, use_bias=False,
                               name="conv_proj")(residual)
            residual = nn.BatchNorm(use_running_average=False, name="norm_proj")(residual)
        return nn.relu(residual + y)


class ExampleResNet(nn.Module):
    """Flax's examples/imagenet ResNet: conv_init, bn_init, ResNetBlock_i, Dense_0."""

    stage_sizes: tuple
    num_classes: int = 0

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(8, (3, 3), use_bias=False, name="conv_init")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=False, name="bn_init")(x))
        for i, blocks in enumerate(self.stage_sizes):
            for j in range(blocks):
                x = ResNetBlock(WIDTHS[i], (2, 2) if i > 0 and j == 0 else (1, 1))(x)
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.num_classes)(x) if self.num_classes else x


class AutoNeck(nn.Module):
    """MMSelfSup's NonLinearNeck (two layers) written with Linen's auto-names."""

    with_bias: bool = False
    with_last_bn: bool = True

    @nn.compact
    def __call__(self, x):
        x = nn.BatchNorm(use_running_average=False)(nn.Dense(16, use_bias=self.with_bias)(x))
        x = nn.Dense(8, use_bias=False)(nn.relu(x))
        return nn.BatchNorm(use_running_average=False)(x) if self.with_last_bn else x


class SimCLRLike(nn.Module):
    stage_sizes: tuple
    with_bias: bool = False
    with_last_bn: bool = True

    @nn.compact
    def __call__(self, x):
        x = ExampleResNet(self.stage_sizes, name="backbone")(x)
        return AutoNeck(self.with_bias, self.with_last_bn, name="neck")(x)


def flax_params(module):
    return jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))["params"]


def torch_simclr_like(stage_sizes, with_bias=False, with_last_bn=True):
    net = torch.nn.Module()
    net.backbone = tm.SmallResNet(WIDTHS[:len(stage_sizes)], tuple(stage_sizes))
    net.neck = tm.NonLinearNeck(WIDTHS[len(stage_sizes) - 1], 16, 8, with_bias=with_bias,
                                with_last_bn=with_last_bn)
    return net


def named_shapes(params, name_map):
    names = oss.torch_names(params, name_map)
    return dict(zip(names, (int(np.prod(x.shape)) for x in jax.tree.leaves(params))))


def torch_shapes(net):
    return {n: p.numel() for n, p in net.named_parameters()}


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=1, max_size=4), st.booleans(), st.booleans())
def test_resnet_map_gives_torch_names_backbone_and_neck(stage_sizes, with_bias, with_last_bn):
    params = flax_params(SimCLRLike(tuple(stage_sizes), with_bias, with_last_bn))
    ours = named_shapes(params, oss.flax_resnet_name_map(stage_sizes, prefix=""))
    assert ours == torch_shapes(torch_simclr_like(stage_sizes, with_bias, with_last_bn))


@pytest.mark.parametrize("with_bias,with_last_bn", [(False, True), (True, False)])
def test_a_neck_is_named_alike_by_both_maps(with_bias, with_last_bn):
    """A neck's BatchNorm_0 is torch's bn0 under both maps (it was bn1 under the ResNet
    map), its Dense_0 torch's fc0 (it was Dense_0 / Dense.0)."""
    params = flax_params(SimCLRLike((1,), with_bias, with_last_bn))
    resnet_map = oss.flax_resnet_name_map([1], prefix="")
    neck = {"neck": params["neck"]}
    want = {f"neck.{n}": s for n, s in torch_shapes(
        tm.NonLinearNeck(8, 16, 8, with_bias=with_bias, with_last_bn=with_last_bn)).items()}
    assert named_shapes(neck, "default") == want
    assert named_shapes(neck, resnet_map) == want
    translate = oss.names.make_name_map("default")
    for raw in oss.leaf_names(params):
        if not raw.startswith("backbone."):
            assert resnet_map(raw) == translate(raw), raw


class TopLevelNeck(nn.Module):
    """A nested Flax ResNet and a neck written straight into the model (top-level Dense_0)."""

    @nn.compact
    def __call__(self, x):
        x = ExampleResNet((1,), name="backbone")(x)
        x = nn.BatchNorm(use_running_average=False)(nn.Dense(16, use_bias=False)(x))
        return nn.BatchNorm(use_running_average=False)(nn.Dense(8, use_bias=False)(nn.relu(x)))


def test_head_none_leaves_a_top_level_dense_0_to_the_default_map():
    params = flax_params(TopLevelNeck())
    net = torch_simclr_like([1])
    for name, module in list(net.neck.named_children()):
        net.add_module(name, module)
    del net.neck
    assert named_shapes(params, oss.flax_resnet_name_map([1], "", head=None)) == \
        torch_shapes(net)
    assert "head.fc.weight" in named_shapes(params, oss.flax_resnet_name_map([1], ""))


def test_a_whole_model_resnet_gets_the_prefix_and_the_head():
    params = flax_params(ExampleResNet((2, 1), num_classes=3))
    net = torch.nn.Module()
    net.backbone = tm.SmallResNet(WIDTHS[:2], (2, 1))
    net.head = torch.nn.Module()
    net.head.fc = torch.nn.Linear(16, 3)
    assert named_shapes(params, oss.flax_resnet_name_map([2, 1])) == torch_shapes(net)
    names = oss.torch_names({"params": params}, oss.flax_resnet_name_map([2, 1]))
    assert "backbone.layer2.0.downsample.1.weight" in names


def test_the_simclr_rules_select_what_they_select_in_torch():
    cfg = oss.load_config(SIMCLR)
    params = jax.tree.map(lambda s: jnp.zeros(s.shape), flax_params(SimCLRLike((1, 1))))
    # as in torch, MMSelfSup's regex misses the shortcut BatchNorm (downsample.1) only
    with pytest.warns(oss.NormLayerWarning, match=r"for backbone.ResNetBlock_1.norm_proj.scale "
                      r"\(as backbone.layer2.0.downsample.1.weight\); "):
        table = oss.describe(cfg, params, name_map=oss.flax_resnet_name_map([1, 1], ""))
    rows = {r["name"]: (r["lr"], r["weight_decay"], r["lars_exclude"]) for r in table}
    net = torch_simclr_like([1, 1])
    built = torch_ref.build(cfg, list(net.named_parameters()), steps_per_epoch=4)
    by_id = {id(p): n for n, p in net.named_parameters()}
    ref = {by_id[id(p)]: (g["lr"], g["weight_decay"], bool(g.get("lars_exclude", False)))
           for g in built.optimizer.param_groups for p in g["params"]}
    assert rows == ref
    assert rows["neck.bn0.weight"][2] and not rows["neck.fc0.weight"][2]


def test_bad_stage_sizes_and_blocks_beyond_them_are_refused():
    for bad in ([], [3, 0], [2.0], "3463", 3):
        with pytest.raises(oss.ConfigError, match="stage_sizes"):
            oss.flax_resnet_name_map(bad)
    with pytest.raises(oss.ConfigError, match="head=1"):
        oss.flax_resnet_name_map([1], head=1)
    translate = oss.flax_resnet_name_map([3, 4, 6, 3])
    assert translate("params.BottleneckResNetBlock_15.BatchNorm_2.scale") == \
        "backbone.layer4.2.bn3.weight"
    with pytest.raises(oss.ConfigError, match=r"block 16 but stage_sizes=\[3, 4, 6, 3\]"):
        translate("params.BottleneckResNetBlock_16.Conv_0.kernel")


def test_the_mae_rule_selects_every_layernorm_of_the_vit_as_in_torch():
    """MAE's 'ln' rule exempts every LayerNorm of MMSelfSup's ViT (ln1 / ln2 of each
    block, the final ln1, the decoder's ln1) from weight decay: no NormLayerWarning, and
    the same groups as torch_ref's for the torch MAE."""
    from optax_selfsup.models import init_model

    cfg = oss.load_config(MAE)
    _, params, _ = init_model("mae_vit", abstract=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", oss.NormLayerWarning)
        table = oss.describe(cfg, params)
    rows = {r["name"]: (r["lr"], r["weight_decay"]) for r in table}
    net = tm.MAE()
    built = torch_ref.build(cfg, list(net.named_parameters()), steps_per_epoch=4)
    by_id = {id(p): n for n, p in net.named_parameters()}
    ref = {by_id[id(p)]: (g["lr"], g["weight_decay"])
           for g in built.optimizer.param_groups for p in g["params"]}
    assert rows == ref
    norms = [n for n in rows if ".ln" in n]
    assert len(norms) == 16 and all(rows[n][1] == 0.0 for n in norms)


def test_norm_layer_warning_names_biases_in_plain_english():
    params = {"backbone": {f"bn{i}": {"weight": np.ones(2, np.float32),
                                      "bias": np.zeros(2, np.float32)} for i in (1, 2)}}
    cfg = dict(optimizer=dict(type="SGD", lr=0.1, weight_decay=1e-4,
                              paramwise_options={r"bn1\.bias": dict(weight_decay=0.0)}))
    with pytest.warns(oss.NormLayerWarning, match=r"^normalization-layer biases get different "
                                                  r"settings .*weight_decay=0.0 for "
                                                  r"backbone.bn1.bias; "):
        oss.describe(cfg, params, name_map=None)
