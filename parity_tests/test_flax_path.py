"""The Flax user's path: NNX and Linen loops, names, serialization, logging.

Every per-parameter table here is compared with torch_ref's param groups for a
torch module with MMSelfSup's names (independent of our name handling).
"""

from __future__ import annotations

import re
import warnings

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx
from flax.training import train_state

import optax_selfsup as oss
import torch_ref

from recipe_harness import gradients, initial_values, nest, run_jax, run_torch

SIMCLR = "configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"
BYOL = "configs/selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py"
SPE = 4


def simclr_cfg():
    return oss.merge_options(oss.load_config(SIMCLR),
                             ["runner.max_epochs=3", "lr_config.warmup_iters=1"])


# --- a small ResNet three ways: NNX, Linen with torch-like names, torch -----------------

class NnxBlock(nnx.Module):
    def __init__(self, rngs):
        self.conv1 = nnx.Conv(4, 4, (3, 3), use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(4, rngs=rngs)
        self.conv2 = nnx.Conv(4, 4, (3, 3), use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(4, rngs=rngs)

    def __call__(self, x):
        y = nnx.relu(self.bn1(self.conv1(x)))
        return nnx.relu(x + self.bn2(self.conv2(y)))


class NnxBackbone(nnx.Module):
    def __init__(self, rngs):
        self.conv1 = nnx.Conv(3, 4, (3, 3), use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(4, rngs=rngs)
        self.layer1 = nnx.List([NnxBlock(rngs)])

    def __call__(self, x):
        x = nnx.relu(self.bn1(self.conv1(x)))
        for block in self.layer1:
            x = block(x)
        return x.mean(axis=(1, 2))


class NnxNet(nnx.Module):
    def __init__(self, rngs):
        self.backbone = NnxBackbone(rngs)
        self.fc = nnx.Linear(4, 3, rngs=rngs)

    def __call__(self, x):
        return self.fc(self.backbone(x))


def torch_net():
    block = torch.nn.Module()
    block.conv1 = torch.nn.Conv2d(4, 4, 3, bias=False)
    block.bn1 = torch.nn.BatchNorm2d(4)
    block.conv2 = torch.nn.Conv2d(4, 4, 3, bias=False)
    block.bn2 = torch.nn.BatchNorm2d(4)
    backbone = torch.nn.Module()
    backbone.conv1 = torch.nn.Conv2d(3, 4, 3, bias=False)
    backbone.bn1 = torch.nn.BatchNorm2d(4)
    backbone.layer1 = torch.nn.Sequential(block)
    net = torch.nn.Module()
    net.backbone = backbone
    net.fc = torch.nn.Linear(4, 3)
    return net


def torch_table(cfg, net):
    built = torch_ref.build(cfg, list(net.named_parameters()), steps_per_epoch=SPE)
    names = {id(p): n for n, p in net.named_parameters()}
    rows = {}
    for g in built.optimizer.param_groups:
        for p in g["params"]:
            rows[names[id(p)]] = (g["lr"], g["weight_decay"], bool(g.get("lars_exclude", False)))
    return rows


def our_table(cfg, params, **kw):
    return {r["name"]: (r["lr"], r["weight_decay"], r["lars_exclude"])
            for r in oss.describe(cfg, params, **kw)}


def test_nnx_optimizer_trains_and_names_match_torch():
    cfg = simclr_cfg()
    model = NnxNet(nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    assert our_table(cfg, params) == torch_table(cfg, torch_net())
    tx = oss.build_optimizer(cfg, params, steps_per_epoch=SPE)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    # the same run on plain arrays (no boxes) with the same transformation
    plain = jax.tree.map(lambda x: x, nnx.as_pure(params))
    plain_state = tx.init(plain)
    x = jax.random.normal(jax.random.key(1), (2, 6, 6, 3))

    @nnx.jit
    def step(model, optimizer, x):
        grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model)
        optimizer.update(model, grads)
        return grads

    for _ in range(5):
        grads = nnx.as_pure(nnx.state(step(model, optimizer, x), nnx.Param))
        updates, plain_state = tx.update(grads, plain_state, plain)
        plain = optax.apply_updates(plain, updates)
    ours = nnx.as_pure(nnx.state(model, nnx.Param))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    hp = oss.current_hparams(optimizer.opt_state)
    assert set(oss.torch_names(hp["lr"])) == set(torch_table(cfg, torch_net()))
    assert int(oss.iteration(optimizer.opt_state)) == 5


def test_nnx_state_names_have_no_value_suffix():
    names = oss.torch_names(nnx.state(NnxNet(nnx.Rngs(0)), nnx.Param))
    assert "backbone.bn1.weight" in names and not any(n.endswith(".value") for n in names)


class LinenBlock(nn.Module):
    @nn.compact
    def __call__(self, x, train):
        y = nn.Conv(4, (3, 3), use_bias=False, name="conv1")(x)
        y = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn1")(y))
        y = nn.Conv(4, (3, 3), use_bias=False, name="conv2")(y)
        return nn.relu(x + nn.BatchNorm(use_running_average=not train, name="bn2")(y))


class LinenNet(nn.Module):
    @nn.compact
    def __call__(self, x, train=True):
        x = nn.Conv(4, (3, 3), use_bias=False, name="conv1")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn1")(x))
        x = LinenBlock(name="layer1_0")(x, train)
        x = x.mean(axis=(1, 2))
        return nn.Dense(3, name="fc")(x)


class Wrapper(nn.Module):
    @nn.compact
    def __call__(self, x, train=True):
        return LinenNet(name="backbone")(x, train)


def test_linen_train_state_loop_and_table_match_torch():
    cfg = simclr_cfg()
    x = jax.random.normal(jax.random.key(1), (2, 6, 6, 3))
    variables = Wrapper().init(jax.random.key(0), x)
    ours = our_table(cfg, variables["params"])
    ref = torch_table(cfg, torch_net())
    # torch's fc lives at the top level, ours inside backbone: compare by suffix
    assert sorted(ours.values()) == sorted(ref.values())
    assert ours["backbone.bn1.weight"] == ref["backbone.bn1.weight"]
    tx = oss.build_optimizer(cfg, variables["params"], steps_per_epoch=SPE)
    state = train_state.TrainState.create(apply_fn=Wrapper().apply, params=variables["params"],
                                          tx=tx)
    stats = variables["batch_stats"]

    @jax.jit
    def step(state, stats):
        def loss(p):
            out, upd = state.apply_fn({"params": p, "batch_stats": stats}, x,
                                      mutable=["batch_stats"])
            return jnp.sum(out ** 2), upd["batch_stats"]
        grads, stats = jax.grad(loss, has_aux=True)(state.params)
        return state.apply_gradients(grads=grads), stats

    before = jax.tree.leaves(state.params)
    for _ in range(3):
        state, stats = step(state, stats)
    assert any(not np.array_equal(a, b) for a, b in zip(before, jax.tree.leaves(state.params)))
    with pytest.raises(oss.ConfigError, match=r"variables\['params'\]"):
        oss.build_optimizer(cfg, variables, steps_per_epoch=SPE)


class ExampleBlock(nn.Module):
    """Named as Flax's own ImageNet example names its ResNet blocks."""

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(4, (3, 3), use_bias=False)(x)
        y = nn.relu(nn.BatchNorm(use_running_average=False)(y))
        y = nn.Conv(4, (3, 3), use_bias=False)(y)
        y = nn.BatchNorm(use_running_average=False)(y)
        r = nn.Conv(4, (1, 1), use_bias=False, name="conv_proj")(x)
        r = nn.BatchNorm(use_running_average=False, name="norm_proj")(r)
        return nn.relu(r + y)


class ExampleResNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3, 3), use_bias=False, name="conv_init")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=False, name="bn_init")(x))
        x = ExampleBlock(name="ResNetBlock_0")(x)
        return nn.Dense(3)(x.mean(axis=(1, 2)))


def test_flax_example_names_warn_and_the_name_map_fixes_them():
    cfg = simclr_cfg()
    variables = ExampleResNet().init(jax.random.key(0), jnp.ones((1, 6, 6, 3)))
    params = variables["params"]
    with pytest.warns(oss.NormLayerWarning, match="bn_init.scale") as record:
        oss.build_optimizer(cfg, params, steps_per_epoch=SPE)
    decayed = re.search(r"lars_exclude=False, weight_decay=1e-06 for ([^;]*)",
                        str(record[0].message)).group(1)
    assert "bn_init.scale" in decayed and "norm_proj.scale" in decayed
    name_map = oss.flax_resnet_name_map([1])
    with pytest.warns(oss.NormLayerWarning) as record:
        table = our_table(cfg, params, name_map=name_map)
    # mapped, only the shortcut BatchNorm differs, as in torch under the same config
    decayed = re.search(r"lars_exclude=False, weight_decay=1e-06 for ([^;]*)",
                        str(record[0].message)).group(1)
    assert decayed == ("ResNetBlock_0.norm_proj.scale "
                       "(as backbone.layer1.0.downsample.1.weight)")
    assert table["backbone.bn1.weight"] == (0.3, 0.0, True)
    assert table["backbone.layer1.0.bn2.weight"] == (0.3, 0.0, True)
    assert table["backbone.layer1.0.conv1.weight"] == (0.3, 1e-6, False)
    # MMSelfSup's regex does not select torch's downsample.1 BatchNorm either
    assert table["backbone.layer1.0.downsample.1.weight"] == (0.3, 1e-6, False)


def test_describe_needs_no_steps_per_epoch():
    params = nest({k: jnp.zeros(3) for k in ("backbone.bn1.weight", "neck.fc0.bias")})
    rows = oss.describe(oss.load_config(SIMCLR), params)
    assert [r["weight_decay"] for r in rows] == [0.0, 0.0]


@pytest.mark.parametrize("path", [SIMCLR, BYOL, "configs/misc/adamw_fp16-dynamic_accum4.py"])
def test_state_round_trips_through_flax_serialization(path, tmp_path):
    import os

    if not os.path.exists(path):
        pytest.skip(f"{path} not in configs/")
    cfg = oss.load_config(path)
    params = nest({k: jnp.asarray(v) for k, v in initial_values().items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=SPE)
    state = tx.init(params)
    for g in gradients(3):
        _, state = tx.update(nest({k: jnp.asarray(v) for k, v in g.items()}), state, params)
    restored = flax.serialization.from_bytes(tx.init(params), flax.serialization.to_bytes(state))
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)


def test_current_hparams_follow_every_micro_step_of_accumulation():
    cfg = oss.merge_options(oss.load_config(BYOL), ["runner.max_epochs=5"])
    spe = 8  # update_interval 16: updates every 2 epochs and a remainder of 8 at the end
    values, grads = initial_values(), gradients(5 * spe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ref_lrs, ref_moms, _ = run_torch(cfg, values, grads, spe)
        _, lrs, moms, _ = run_jax(cfg, values, grads, spe)
    np.testing.assert_allclose(lrs, ref_lrs, rtol=3e-7)  # at every micro-iteration
    params = nest({k: jnp.asarray(v) for k, v in values.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=spe)
    state = tx.init(params)
    step = jax.jit(tx.update)
    for it, g in enumerate(grads):
        _, state = step(nest({k: jnp.asarray(v) for k, v in g.items()}), state, params)
        assert int(oss.iteration(state)) == it + 1
        assert bool(oss.has_updated(state)) == ((it + 1) % 16 == 0 or it == len(grads) - 1)
    logged = oss.group_values(oss.current_hparams(state)["lr"])
    assert len(logged) == 1 and list(logged.values())[0] == pytest.approx(ref_lrs[-1][0])


def test_apply_if_finite_skips_a_nan_step_without_fp16():
    cfg = simclr_cfg()
    params = nest({k: jnp.asarray(v) for k, v in initial_values().items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = optax.apply_if_finite(oss.build_optimizer(cfg, params, steps_per_epoch=SPE), 3)
    state = tx.init(params)
    g = nest({k: jnp.asarray(v) for k, v in gradients(1)[0].items()})
    bad = jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(jnp.nan), g)
    updates, state = tx.update(bad, state, params)
    assert all(float(jnp.max(jnp.abs(u))) == 0 for u in jax.tree.leaves(updates))
    assert int(state.notfinite_count) == 1
    updates, state = tx.update(g, state, params)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_fp16_skipped_step_reports_the_current_lr():
    cfg = simclr_cfg()
    cfg["fp16"] = dict(loss_scale="dynamic")
    values = initial_values()
    grads = gradients(6, inf_at=(2,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ref_lrs, _, _ = run_torch(cfg, values, grads, SPE)
        _, lrs, _, updated = run_jax(cfg, values, grads, SPE, fp16=True)
    assert not updated[2] and updated[3]
    np.testing.assert_allclose(lrs, ref_lrs, rtol=3e-7)
