"""Every config in configs/ is covered: each MMSelfSup 0.x recipe is loaded, built and matches
torch_ref per iteration here; each MMEngine recipe (configs/mmselfsup1/, configs/mmpretrain/) is
listed in test_recipes_mmengine.py (loaded, equal to its upstream file) and matches the real
MMEngine Runner in test_parity_configs.py."""

import os
import warnings

import numpy as np
import pytest
from test_recipes_mmengine import RECIPES as MMENGINE_RECIPES

import optax_selfsup as oss

from recipe_harness import (
    gradients,
    initial_values,
    jax_order,
    param_error,
    rel_error,
    run_jax,
    run_torch,
)

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
ALL_CONFIGS = sorted(os.path.relpath(os.path.join(d, f), ROOT)
                     for d, _, files in os.walk(ROOT) for f in files if f.endswith(".py"))

# recipe: (steps_per_epoch, iterations to run, --cfg-options overrides, gradient inf steps)
RECIPES = {
    "selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py": (2, 80, [], ()),
    "selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py": (2, 96, [], ()),
    "selfsup/swav/swav_resnet50_8xb32-mcrop-2-6-coslr-200e_in1k.py":
        (2, 80, ["optimizer_config.frozen_layers_cfg.prototypes=30"], ()),
    "selfsup/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py": (1, 80, [], ()),
    "selfsup/mocov1/mocov1_resnet50_8xb32-steplr-200e_in1k.py":
        (1, 80, ["lr_config.step=[20,50]"], ()),
    "selfsup/rotation_pred/rotation-pred_resnet50_8xb16-steplr-70e_in1k.py": (2, 80, [], ()),
    "selfsup/simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py": (1, 80, [], ()),
    "selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py": (1, 80, [], ()),
    "selfsup/simmim/simmim_swin-base_16xb128-coslr-100e_in1k-192.py":
        (2, 80, ["lr_config.warmup_iters=30"], ()),
    "selfsup/barlowtwins/barlowtwins_resnet50_8xb256-accum8-coslr-300e_in1k.py":
        (2, 80, [], ()),
    "benchmarks/classification/vit-base-p16_ft-8xb128-coslr-100e_in1k.py": (4, 80, [], ()),
    "tutorial/cyclic_lr_momentum.py": (4, 80, [], ()),
    "misc/sgd_gradclip-inf_coslr.py": (4, 80, [], ()),
    "misc/sgd_accum8-remainder_iter.py": (None, 70, [], ()),
    "misc/adamw_fp16-dynamic_accum4.py": (4, 80, [], (5, 6, 22, 41)),
    "_base_/schedules/lars_coslr-200e_in1k.py": (2, 60, [], ()),
    "_base_/schedules/sgd_coslr-200e_in1k.py": (1, 60, [], ()),
    "_base_/schedules/sgd_steplr-200e_in1k.py": (1, 60, ["lr_config.step=[10,30]"], ()),
    "_base_/schedules/adamw_coslr-300e_in1k.py": (1, 60, [], ()),
}
NOT_OPTIMIZER_CONFIGS = {"_base_/default_runtime.py"}


def test_every_config_is_covered():
    assert set(ALL_CONFIGS) == set(RECIPES) | set(MMENGINE_RECIPES) | NOT_OPTIMIZER_CONFIGS
    assert not set(RECIPES) & set(MMENGINE_RECIPES)


def test_every_mmengine_recipe_is_compared_with_the_real_mmengine():
    from test_parity_configs import MMENGINE, SHIPPED

    assert {c for c in SHIPPED if c.startswith(MMENGINE)} == set(MMENGINE_RECIPES)


def test_runtime_only_config_is_refused_by_the_builder():
    cfg = oss.load_config(os.path.join(ROOT, "_base_/default_runtime.py"))
    with pytest.raises(oss.ConfigError, match="no 'optimizer'"):
        oss.build_optimizer(cfg, {}, steps_per_epoch=1)


def load(name):
    spe, steps, overrides, inf_at = RECIPES[name]
    cfg = oss.load_config(os.path.join(ROOT, name))
    if overrides:
        cfg = oss.merge_options(cfg, overrides)
    return cfg, spe, steps, inf_at


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_matches_torch_ref_every_iteration(name, torch_device):
    check_recipe(name, torch_device)


# the flat layout (docs/flat-layout.md) in CI on recipes covering LARS with excluded
# tensors, accumulation, frozen layers, AdamW, an inf-norm clip, fp16 loss scaling and
# SimSiam's fixed lr; the others are marked slow
FLAT_CI = {
    "selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py",
    "selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py",
    "selfsup/swav/swav_resnet50_8xb32-mcrop-2-6-coslr-200e_in1k.py",
    "selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py",
    "selfsup/simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py",
    "misc/sgd_gradclip-inf_coslr.py",
    "misc/adamw_fp16-dynamic_accum4.py",
}


@pytest.mark.parametrize("name", [n if n in FLAT_CI else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(RECIPES)])
def test_recipe_on_the_flat_layout_matches_torch_ref(name, torch_device):
    """``layout='flat'`` with the params living flat (``Flat`` in, ``Flat`` out)."""
    check_recipe(name, torch_device, opt_layout="flat", live_flat=True)


def check_recipe(name, torch_device, **kw):
    cfg, spe, steps, inf_at = load(name)
    values = initial_values()
    grads = gradients(steps, inf_at=inf_at)
    fp16 = cfg.get("fp16") is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rules for tensors this small model lacks
        ours, lrs, moms, updated = run_jax(cfg, values, grads, spe, fp16=fp16, **kw)
    ref, ref_lrs, ref_moms, built = run_torch(cfg, values, grads, spe, device=torch_device)
    for it in range(steps + 1):
        err = param_error(ours[it], ref[it])
        assert err <= 1e-5, f"iteration {it}: max |dp|/max(1,|p|) = {err:.3g}"
    assert updated.any()
    assert rel_error(lrs[updated], ref_lrs[updated]) <= 1e-6
    if ref_moms is not None:
        assert rel_error(moms[updated], ref_moms[updated]) <= 1e-6
    moved = max(float(np.max(np.abs(ours[-1][k] - values[k]))) for k in values)
    assert moved > 1e-4
    if fp16:
        assert not updated[list(inf_at)].all()  # the non-finite updates were skipped


def test_fp16_loss_scale_grows_and_backs_off_like_grad_scaler():
    name = "misc/adamw_fp16-dynamic_accum4.py"
    cfg, spe, steps, inf_at = load(name)
    cfg = oss.merge_options(cfg, {"fp16": {"loss_scale": {"_delete_": True, "init_scale": 256.0,
                                                          "growth_interval": 3}}})
    values, grads = initial_values(), gradients(steps, inf_at=inf_at)
    ours, *_ = run_jax(cfg, values, grads, spe, fp16=True)
    ref, _, _, built = run_torch(cfg, values, grads, spe)
    assert param_error(ours[-1], ref[-1]) <= 1e-5
    assert built.optimizer_hook.scaler.get_scale() != 256.0


def test_frozen_prototypes_keep_value_and_state_until_the_iteration():
    cfg, spe, steps, _ = load("selfsup/swav/swav_resnet50_8xb32-mcrop-2-6-coslr-200e_in1k.py")
    values = initial_values()
    ours, *_ = run_jax(cfg, values, gradients(steps), spe)
    np.testing.assert_array_equal(ours[30]["prototypes.weight"], values["prototypes.weight"])
    assert not np.array_equal(ours[31]["prototypes.weight"], values["prototypes.weight"])


def test_simsiam_predictor_keeps_its_lr():
    cfg, spe, steps, _ = load("selfsup/simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py")
    values = initial_values()
    _, lrs, _, _ = run_jax(cfg, values, gradients(steps), spe)
    order = jax_order(values)
    pred = order.index("head.predictor.0.weight")
    other = order.index("neck.mlp.0.weight")
    assert np.all(lrs[:, pred] == np.float32(0.05))
    assert lrs[-1, other] < 0.05


def test_update_interval_flushes_the_remainder_at_the_last_iteration():
    cfg, spe, steps, _ = load("misc/sgd_accum8-remainder_iter.py")
    values = initial_values()
    ours, _, _, updated = run_jax(cfg, values, gradients(steps), spe)
    assert list(np.nonzero(updated)[0]) == [7, 15, 23, 31, 39, 47, 55, 63, 69]
    ref, *_ = run_torch(cfg, values, gradients(steps), spe)
    assert param_error(ours[-1], ref[-1]) <= 1e-5
    assert param_error(ours[-1], ours[-2]) > 1e-4  # the last short group really moved them
