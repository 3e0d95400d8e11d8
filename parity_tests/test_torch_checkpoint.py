"""Continue a torch_ref run in JAX from its mmcv-style checkpoint.

torch_ref trains the demo tree N iterations, writes an mmcv checkpoint ({'meta': {epoch,
iter}, 'state_dict', 'optimizer'}, torch_ref/checkpoint.py) and goes on M iterations;
``oss.from_torch_checkpoint`` reads the checkpoint and optax_selfsup goes on the same M
iterations: equal per iteration (float64: 1e-9, float32: 1e-5 relative to max(1, |p|)).
"""

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optax_selfsup as oss
import torch_ref
from optax_selfsup.checkpoint import TorchCheckpointError, from_torch_checkpoint
from torch_ref.checkpoint import checkpoint_dict, save_checkpoint

from recipe_harness import MODEL, jax_order, nest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")

# name: (config, overrides, steps_per_epoch, N (checkpoint), M (continued), inf steps)
CASES = {
    "simclr": ("selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py",
               ["optimizer_config.frozen_layers_cfg.prototypes=30"], 2, 13, 27, ()),
    "byol_accum16": ("selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py", [], 2,
                     32, 33, ()),
    "mae": ("selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py", [], 1, 9, 21, ()),
    "fp16": ("misc/adamw_fp16-dynamic_accum4.py", [], 4, 12, 28, (5, 6, 22)),
}
TOL = {np.float64: 1e-9, np.float32: 1e-5}


def config(name, overrides):
    cfg = oss.load_config(os.path.join(ROOT, name))
    return oss.merge_options(cfg, overrides) if overrides else cfg


def data(steps, dtype, inf_at=(), seed=0):
    rng = np.random.default_rng(seed)
    values = {k: (rng.normal(size=s) * 0.5).astype(dtype) for k, s in MODEL.items()}
    values["neck.zero_init.weight"][...] = 0
    grads = [{k: (rng.normal(size=s) * 0.1).astype(dtype) for k, s in MODEL.items()}
             for _ in range(steps)]
    for it in inf_at:
        grads[it]["neck.mlp.0.weight"][0, 0] = np.inf
    return values, grads


def torch_run(cfg, spe, values, grads, save_at):
    """Params before every iteration (and after the last) and the checkpoint at ``save_at``."""
    named = [(n, torch.nn.Parameter(torch.tensor(values[n]))) for n in jax_order(values)]
    built = torch_ref.build(cfg, named, steps_per_epoch=spe)
    runner = torch_ref.Runner(built)
    history, saved = [], {}

    def record(r):
        history.append({n: p.detach().numpy().copy() for n, p in named})
        if r.iter == save_at:
            saved["ckpt"] = checkpoint_dict(r, named)

    runner.train(lambda it: {k: torch.tensor(v) for k, v in grads[it].items()}, record=record,
                 num_iters=len(grads))
    history.append({n: p.detach().numpy().copy() for n, p in named})
    return history, saved["ckpt"]


def jax_continue(cfg, spe, template, resumed, grads, fp16):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = oss.build_optimizer(cfg, template, steps_per_epoch=spe)

    @jax.jit
    def step(params, state, g):
        if fp16:
            g = jax.tree.map(lambda x: x * oss.loss_scale(state), g)
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    params, state, out = resumed.params, resumed.opt_state, []
    for g in grads:
        params, state = step(params, state, nest({k: jnp.asarray(v) for k, v in g.items()}))
        out.append({".".join(str(k.key) for k in p): np.asarray(v)
                    for p, v in jax.tree_util.tree_flatten_with_path(params)[0]})
    return out, state


def deviation(ours, ref):
    return max(float(np.max(np.abs(ours[k] - ref[k]) / np.maximum(1.0, np.abs(ref[k])),
                            initial=0.0)) for k in ref)


def continue_case(name, dtype, tmp_path=None, drop_optimizer_state=False):
    cfg_name, overrides, spe, n, m, inf_at = CASES[name]
    cfg = config(cfg_name, overrides)
    values, grads = data(n + m, dtype, inf_at)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history, ckpt = torch_run(cfg, spe, values, grads, n)
        template = nest({k: jnp.zeros(v.shape, v.dtype) for k, v in values.items()})
        source = ckpt
        if tmp_path is not None:  # through a file, as mmcv writes it
            source = str(tmp_path / "iter.pth")
            torch.save(ckpt, source)
        resumed = from_torch_checkpoint(source, cfg, template, steps_per_epoch=spe)
    assert resumed.iteration == n and int(oss.iteration(resumed.opt_state)) == n
    if drop_optimizer_state:  # the negative control: params only, a fresh optimizer state
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fresh = oss.build_optimizer(cfg, template, steps_per_epoch=spe).init(template)
        resumed = resumed._replace(opt_state=fresh)
    ours, state = jax_continue(cfg, spe, template, resumed, grads[n:], cfg.get("fp16") is not None)
    devs = [deviation(ours[j], history[n + j + 1]) for j in range(m)]
    moved = deviation(history[-1], history[n])
    return devs, moved, state


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_continuation_matches_torch(name, tmp_path):
    devs, moved, state = continue_case(name, np.float32, tmp_path)
    assert max(devs) <= TOL[np.float32], f"per-iteration deviations {devs}"
    assert moved > 1e-4  # the continued iterations really changed the params
    if name == "fp16":  # the scale came from the checkpoint and backed off at it 22
        assert float(oss.current_hparams(state)["loss_scale"]) == 65536.0 * 0.5 ** 2
        assert float(oss.loss_scale(state)) == 65536.0 * 0.5 ** 2 / 4  # update_interval=4


def test_params_alone_do_not_continue_the_run():
    devs, _, _ = continue_case("mae", np.float32, drop_optimizer_state=True)
    assert max(devs) > 1e-3  # so the optimizer state read from torch is what matches


@pytest.mark.parametrize("name", ["simclr", "mae", "fp16"])
def test_float64_continuation_matches_torch(name):
    with jax.enable_x64(True):
        devs, moved, _ = continue_case(name, np.float64)
    assert max(devs) <= TOL[np.float64], f"per-iteration deviations {devs}"
    assert moved > 1e-4


def _simple_checkpoint(cfg_name, overrides=(), spe=2, n=4):
    cfg = config(cfg_name, list(overrides))
    values, grads = data(n + 1, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ckpt = torch_run(cfg, spe, values, grads, n)
    return cfg, values, ckpt


def test_a_missing_parameter_is_named():
    cfg, values, ckpt = _simple_checkpoint(CASES["mae"][0])
    del ckpt["state_dict"]["neck.mlp.0.weight"]
    template = nest({k: jnp.zeros(v.shape) for k, v in values.items()})
    with pytest.raises(TorchCheckpointError, match="parameter 'neck.mlp.0.weight' is not in "
                                                   "the checkpoint's state_dict"):
        from_torch_checkpoint(ckpt, cfg, template, steps_per_epoch=2)


def test_a_shape_mismatch_is_named():
    cfg, values, ckpt = _simple_checkpoint(CASES["mae"][0])
    template = nest({k: jnp.zeros(v.shape) for k, v in values.items()})
    template["neck"]["mlp"]["0"]["weight"] = jnp.zeros((8, 16))
    with pytest.raises(TorchCheckpointError, match=r"parameter 'neck.mlp.0.weight': the "
                                                   r"checkpoint has shape \(16, 8\), the "
                                                   r"template \(8, 16\)"):
        from_torch_checkpoint(ckpt, cfg, template, steps_per_epoch=2)


def test_another_optimizer_is_named_from_its_param_groups():
    cfg, values, ckpt = _simple_checkpoint(CASES["mae"][0])  # AdamW state
    lars = config(CASES["simclr"][0], [])
    template = nest({k: jnp.zeros(v.shape) for k, v in values.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TorchCheckpointError, match=r"the torch optimizer is Adam or AdamW "
                                                       r"\(its param_groups lack dampening, "
                                                       r"eta, momentum, nesterov, which LARS "
                                                       r"has\); this config has "
                                                       r"optimizer.type='LARS'"):
            from_torch_checkpoint(ckpt, lars, template, steps_per_epoch=2)


def test_an_optimizer_with_the_same_keys_is_named_with_its_slots():
    """Adamax and RAdam have the same param_groups keys: their slots tell them apart."""
    cfg, values, ckpt = _simple_checkpoint(CASES["mae"][0], ["optimizer.type=Adamax"])
    radam = oss.merge_options(cfg, ["optimizer.type=RAdam"])
    template = nest({k: jnp.zeros(v.shape) for k, v in values.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TorchCheckpointError, match="the torch optimizer state has exp_avg, "
                                                       r"exp_inf; this optimizer \(RAdam\) "
                                                       "keeps exp_avg, exp_avg_sq"):
            from_torch_checkpoint(ckpt, radam, template, steps_per_epoch=2)


def test_another_weight_decay_is_named():
    cfg, values, ckpt = _simple_checkpoint(CASES["mae"][0])
    other = oss.merge_options(cfg, ["optimizer.weight_decay=0.01"])
    template = nest({k: jnp.zeros(v.shape) for k, v in values.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo tree's norm layers get mixed settings
        with pytest.raises(TorchCheckpointError, match="group has weight_decay=0.05, this "
                                                       "config gives weight_decay=0.01"):
            from_torch_checkpoint(ckpt, other, template, steps_per_epoch=2)


def test_save_checkpoint_writes_mmcv_layout(tmp_path):
    cfg = config(CASES["fp16"][0], [])
    values, grads = data(6, np.float32)
    named = [(n, torch.nn.Parameter(torch.tensor(values[n]))) for n in jax_order(values)]
    runner = torch_ref.Runner(torch_ref.build(cfg, named, steps_per_epoch=4))
    runner.train(lambda it: {k: torch.tensor(v) for k, v in grads[it].items()}, num_iters=6)
    ckpt = save_checkpoint(tmp_path / "x.pth", runner, named)
    loaded = torch.load(tmp_path / "x.pth", weights_only=True)
    assert loaded["meta"]["iter"] == 6 and loaded["meta"]["epoch"] == 1
    assert set(loaded["meta"]["fp16"]["loss_scaler"]) >= {"scale", "_growth_tracker"}
    assert list(loaded["state_dict"]) == list(ckpt["state_dict"]) == jax_order(values)
    assert set(loaded["optimizer"]) == {"state", "param_groups"}
