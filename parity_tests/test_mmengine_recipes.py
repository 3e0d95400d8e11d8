"""MMEngine configs through ``oss.build_optimizer``, step for step against the real MMEngine.

Every case trains the same small tree (torch names, real module types on the torch side)
with MMEngine 0.10.7's ``Runner`` (``torch_ref.mmengine``: the real wrappers, constructors,
schedulers, hooks and MMPretrain 1.2.0's optimizers) and with ``oss.build_optimizer`` on the
same gradients, and compares at every iteration the parameters (``|ours - torch| /
max(1, |torch|)``), the lr / momentum / weight decay each parameter's group used, and which
iterations stepped. Real config files are read with ``oss.load_config`` where one covers the
feature. Tolerances: float32 1e-5, float64 1e-12 (``jax.enable_x64`` around the JAX side);
the float64 runs of the longer recipes are marked slow (the SGD case keeps one in the quick set).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from mmengine_parity import compare

import optax_selfsup as oss

from upstream_data import config_path

F32, F64 = 1e-5, 1e-12

RESNET = {
    "backbone.conv1.weight": (4, 3, 3, 3),
    "backbone.bn1.weight": (4,), "backbone.bn1.bias": (4,),
    "backbone.layer1.0.conv1.weight": (4, 4, 3, 3),
    "backbone.layer1.0.bn1.weight": (4,), "backbone.layer1.0.bn1.bias": (4,),
    "backbone.layer1.0.downsample.0.weight": (4, 4, 1, 1),
    "backbone.layer1.0.downsample.1.weight": (4,), "backbone.layer1.0.downsample.1.bias": (4,),
    "neck.mlp.0.weight": (6, 4), "neck.mlp.0.bias": (6,), "neck.mlp.2.weight": (3, 6),
}
RESNET_MODULES = {"backbone.bn1": ("bn", 4), "backbone.layer1.0.bn1": ("bn", 4),
                  "backbone.layer1.0.downsample.1": ("bn", 4), "neck.mlp.0": ("linear", 6, 4),
                  "neck.mlp.2": ("module",)}

VIT = {
    "backbone.cls_token": (1, 1, 4), "backbone.pos_embed": (1, 3, 4),
    "backbone.patch_embed.projection.weight": (4, 3, 2, 2),
    "backbone.patch_embed.projection.bias": (4,),
    "backbone.layers.0.ln1.weight": (4,), "backbone.layers.0.ln1.bias": (4,),
    "backbone.layers.0.attn.qkv.weight": (12, 4), "backbone.layers.0.attn.qkv.bias": (12,),
    "backbone.layers.1.ffn.layers.0.0.weight": (4, 4),
    "backbone.ln1.weight": (4,), "backbone.ln1.bias": (4,),
    "head.layers.head.weight": (3, 4), "head.layers.head.bias": (3,),
}
VIT_MODULES = {"backbone.layers.0.ln1": ("ln", 4), "backbone.ln1": ("ln", 4)}

MIX = {  # every rule of DefaultOptimWrapperConstructor has a parameter here
    "backbone.conv.weight": (4, 2, 3, 3),
    "backbone.bn.weight": (4,), "backbone.bn.bias": (4,),
    "backbone.dw.weight": (4, 1, 3, 3), "backbone.dw.bias": (4,),
    "backbone.gamma": (4,),  # flat, owned by the backbone itself
    "backbone.temperature": (),  # 0-d: not flat
    "backbone.ln.weight": (4,), "backbone.ln.bias": (4,),
    "head.fc.weight": (3, 4), "head.fc.bias": (3,),
}
MIX_MODULES = {"backbone.bn": ("bn", 4), "backbone.dw": ("dwconv", 4, 3),
               "backbone.ln": ("ln", 4), "head.fc": ("linear", 3, 4)}


def real(relpath: str) -> dict:
    return oss.load_config(config_path(relpath))


def report(name, dev, dtype):
    print(f"{name} [{np.dtype(dtype).name}]: params {dev.params:.3g}, lr {dev.lr:.3g}, "
          f"momentum {dev.momentum:.3g}, weight_decay {dev.weight_decay:.3g}")


# -- LARS: MMSelfSup 1.0 SimCLR (custom_keys decay_mult / lars_exclude, warmup converted to
#    iterations handing over to a by-epoch cosine) ----------------------------------------------

SIMCLR = "mmselfsup-1.0.0/selfsup/simclr/simclr_resnet50_16xb256-coslr-200e_in1k.py"


@pytest.mark.parametrize("dtype,tol", [(np.float32, F32),
                                       pytest.param(np.float64, F64, marks=pytest.mark.slow)])
def test_simclr_lars_recipe(dtype, tol):
    cfg = real(SIMCLR)
    dev = compare(cfg, RESNET, steps=28, steps_per_epoch=2, dtype=dtype,
                  ref_kwargs=dict(modules=RESNET_MODULES))
    report("simclr LARS", dev, dtype)
    dev.check(tol)
    groups = dev.run.groups
    assert groups["backbone.layer1.0.downsample.1.bias"]["lars_exclude"] is True
    lr = dev.run.lr["backbone.conv1.weight"]
    assert lr[0] == pytest.approx(4.8e-4) and lr[20] == pytest.approx(4.8)  # warmup ends


# -- Lamb + AmpOptimWrapper (dynamic, an overflow) + clip_grad + CosineAnnealingWeightDecay
#    rising above the base: MMPretrain 1.2 SparK --------------------------------------------------

SPARK = "mmpretrain-1.2.0/spark/spark_sparse-resnet50_8xb512-amp-coslr-800e_in1k.py"


@pytest.mark.parametrize("dtype,tol,grad_scale", [
    (np.float32, F32, 0.1),
    # float64: gradients small enough that Lamb's global clip (max_grad_norm=1) stays off;
    # where it engages, upstream's float32 norm accumulator (and torch's CPU sqrt) leave
    # ~4e-10 (see transforms/lamb.py)
    pytest.param(np.float64, F64, 0.01, marks=pytest.mark.slow)])
def test_spark_lamb_amp_recipe(dtype, tol, grad_scale):
    cfg = real(SPARK)
    cfg["param_scheduler"][-1].update(T_max=20, end=20)  # the decay rises within the run
    shapes = dict(RESNET, **{"backbone.mask_token": (1, 4, 1, 1)})
    dev = compare(cfg, shapes, steps=24, steps_per_epoch=1, amp=True, dtype=dtype,
                  grad_scale=grad_scale, inject_inf={6: "neck.mlp.0.weight"},
                  ref_kwargs=dict(modules=RESNET_MODULES))
    report("SparK Lamb AMP", dev, dtype)
    dev.check(tol)
    assert not dev.run.stepped[6] and dev.run.stepped[7]
    np.testing.assert_array_equal(dev.ours["loss_scale"], dev.run.loss_scale)
    assert dev.run.loss_scale[7] == 2.0**15
    wd = dev.run.weight_decay
    assert wd["backbone.conv1.weight"][-1] > 0.15 and wd["backbone.bn1.bias"].max() == 0.0
    norms = np.asarray([n for n in dev.ours["grad_norm"]])
    ok = dev.run.stepped
    np.testing.assert_allclose(norms[ok], dev.run.grad_norm[ok], rtol=1e-5)  # a float32 log


# -- AdamW + MMPretrain layer decay (ViT) + custom_keys: MAE fine-tuning --------------------------

MAE_FT = "mmpretrain-1.2.0/mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py"


@pytest.mark.parametrize("dtype,tol", [(np.float32, F32),
                                       pytest.param(np.float64, F64, marks=pytest.mark.slow)])
def test_mae_finetune_layer_decay_adamw(dtype, tol):
    cfg = real(MAE_FT)
    dev = compare(cfg, VIT, steps=30, steps_per_epoch=4, dtype=dtype,
                  ref_kwargs=dict(modules=VIT_MODULES))
    report("MAE fine-tune AdamW layer decay", dev, dtype)
    dev.check(tol)
    groups = dev.run.groups
    assert groups["backbone.layers.0.ln1.weight"]["layer_id"] == 1
    assert groups["head.layers.head.weight"]["lr"] == pytest.approx(2e-3 * 0.65 ** 0)
    assert groups["backbone.cls_token"]["lr"] == pytest.approx(2e-3 * 0.65 ** 13)


# -- SGD with every DefaultOptimWrapperConstructor rule, accumulation with a remainder, value
#    clip, a momentum scheduler, by-epoch schedulers under an IterBasedTrainLoop ----------------

SGD_EVERYTHING = dict(
    optim_wrapper=dict(
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True),
        paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.5, norm_decay_mult=0.0,
                           dwconv_decay_mult=0.1, flat_decay_mult=0.3,
                           custom_keys={"head": dict(lr_mult=0.1, decay_mult=2.0),
                                        "head.fc.bias": dict(lr_mult=3.0)}),
        clip_grad=dict(type="value", clip_value=0.05),
        accumulative_counts=3),
    param_scheduler=[
        dict(type="LinearLR", start_factor=0.5, by_epoch=True),  # under an iteration loop:
        # its construction step only (halves the lr for good)
        dict(type="CosineAnnealingLR", by_epoch=True, convert_to_iter_based=True, begin=1,
             end=3, eta_min=1e-3),
        dict(type="CosineAnnealingMomentum", by_epoch=False, eta_min=0.8, begin=2, end=14)],
    train_cfg=dict(type="IterBasedTrainLoop", max_iters=17))  # 17 = 5 * 3 + 2: a remainder


@pytest.mark.parametrize("dtype,tol", [(np.float32, F32), (np.float64, F64)])
def test_sgd_every_paramwise_rule_accumulation_value_clip(dtype, tol):
    with pytest.warns(UserWarning, match="by_epoch=True under an IterBasedTrainLoop"):
        dev = compare(SGD_EVERYTHING, MIX, steps=17, steps_per_epoch=4, dtype=dtype,
                      ref_kwargs=dict(modules=MIX_MODULES))
    report("SGD paramwise accumulate", dev, dtype)
    dev.check(tol)
    assert dev.run.stepped.tolist() == [(t + 1) % 3 == 0 or t == 16 for t in range(17)]
    groups = dev.run.groups
    expected_wd = {"backbone.bn.weight": 0.0, "backbone.dw.weight": 1e-3, "backbone.gamma": 3e-3,
                   "backbone.temperature": 1e-2, "backbone.dw.bias": 5e-3,
                   "head.fc.weight": 2e-2}
    for name, wd in expected_wd.items():
        assert groups[name]["weight_decay"] == pytest.approx(wd), name


# -- AdamW + AmpOptimWrapper(loss_scale=512.0): a static scale still skips an overflow; betas[0]
#    scheduled; weight decay scheduled by MMEngine's own cosine (pulls the 0 groups up); an inf
#    norm clip -------------------------------------------------------------------------------

ADAMW_AMP = dict(
    optim_wrapper=dict(
        type="AmpOptimWrapper", loss_scale=512.0,
        optimizer=dict(type="AdamW", lr=1e-2, weight_decay=0.05, betas=(0.9, 0.999)),
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
        clip_grad=dict(max_norm=0.05, norm_type="inf")),
    param_scheduler=[
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=6),
        dict(type="CosineAnnealingMomentum", eta_min=0.8, by_epoch=True, begin=1, end=5,
             convert_to_iter_based=True),
        dict(type="CosineAnnealingParamScheduler", param_name="weight_decay", eta_min=0.2,
             by_epoch=False, end=20)],
    train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=5))


def test_adamw_static_amp_betas_and_weight_decay_schedules():
    dev = compare(ADAMW_AMP, MIX, steps=20, steps_per_epoch=4, amp=True,
                  inject_inf={3: "backbone.conv.weight"}, ref_kwargs=dict(modules=MIX_MODULES))
    report("AdamW static AMP", dev, np.float32)
    dev.check(F32)
    assert not dev.run.stepped[3] and dev.run.stepped.sum() == 19
    assert set(dev.run.loss_scale) == {512.0}
    wd = dev.run.weight_decay["backbone.bn.weight"]
    assert wd[0] == 0.0 and wd[-1] > 0.15  # pulled up from 0 towards eta_min
    assert dev.run.momentum["head.fc.weight"][-1] < 0.81


# -- SGD + AmpOptimWrapper(loss_scale=dict(...)): growth, an overflow inside an accumulation
#    window, a norm clip after unscaling ---------------------------------------------------------

SGD_AMP_DICT = dict(
    optim_wrapper=dict(
        type="AmpOptimWrapper", loss_scale=dict(init_scale=2.0**10, growth_interval=2),
        optimizer=dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=1e-3),
        clip_grad=dict(max_norm=0.3), accumulative_counts=2),
    param_scheduler=dict(type="MultiStepLR", milestones=[4, 8], gamma=0.5, by_epoch=False),
    train_cfg=dict(type="IterBasedTrainLoop", max_iters=13))


def test_sgd_amp_dict_scaler_accumulation_overflow():
    dev = compare(SGD_AMP_DICT, MIX, steps=13, steps_per_epoch=13, amp=True,
                  inject_inf={4: "head.fc.weight"}, ref_kwargs=dict(modules=MIX_MODULES))
    report("SGD AMP dict accumulate", dev, np.float32)
    dev.check(F32)
    assert dev.run.stepped.tolist() == [t in (1, 3, 7, 9, 11, 12) for t in range(13)]
    np.testing.assert_array_equal(dev.ours["loss_scale"], dev.run.loss_scale)
    assert max(dev.run.loss_scale) > 2.0**10  # grew


# -- SimSiamHook (MMPretrain SimSiam): the predictor's fixed lr, the cosine continuing from it -----

SIMSIAM = "mmpretrain-1.2.0/simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py"


@pytest.mark.parametrize("adjust_by_epoch", [True, False])
def test_simsiam_hook_fixes_the_predictor_lr(adjust_by_epoch):
    cfg = real(SIMSIAM)
    cfg["custom_hooks"][0]["adjust_by_epoch"] = adjust_by_epoch
    cfg["param_scheduler"] = [dict(type="LinearLR", start_factor=0.5, by_epoch=False, end=4),
                              *cfg["param_scheduler"]]
    shapes = dict(RESNET, **{"head.predictor.0.weight": (3, 3), "head.predictor.0.bias": (3,)})
    dev = compare(cfg, shapes, steps=12, steps_per_epoch=3, ref_kwargs=dict(
        modules=dict(RESNET_MODULES, **{"head.predictor.0": ("linear", 3, 3)})))
    report(f"SimSiam adjust_by_epoch={adjust_by_epoch}", dev, np.float32)
    dev.check(F32)
    lr = dev.run.lr["head.predictor.0.weight"]
    assert lr[0] == 0.05 and (lr[1] == 0.05) != adjust_by_epoch


# -- SwAVHook's frozen_layers_cfg (MMPretrain SwAV: LARS in ONE param group) -------------------

SWAV = "mmpretrain-1.2.0/swav/swav_resnet50_8xb32-mcrop-coslr-200e_in1k-224px-96px.py"


@pytest.fixture(scope="module")
def swav_freeze_only():
    """MMPretrain's SwAVHook, its queue handling (which needs SwAV's head) switched off: the
    freezing (``before_train_iter``) is upstream's code, unchanged."""
    from torch_ref.mmengine.upstream import swav_freeze_only_hook

    return swav_freeze_only_hook()


def test_swav_hook_frozen_prototypes(swav_freeze_only):
    cfg = real(SWAV)
    cfg["custom_hooks"][0]["frozen_layers_cfg"] = {"prototypes": 5}
    ref_cfg = copy.deepcopy(cfg)
    ref_cfg["custom_hooks"][0]["type"] = swav_freeze_only
    shapes = dict(RESNET, **{"head.prototypes.weight": (5, 3)})
    from mmengine_parity import draw, jax_order, run_ours

    from torch_ref.mmengine import run_mmengine

    values, grads = draw(shapes, 10)
    values = {k: values[k] for k in jax_order(values)}
    run = run_mmengine(ref_cfg, values, grads, steps_per_epoch=3, modules=RESNET_MODULES)
    ours = run_ours(cfg, values, grads, steps_per_epoch=3)
    err = max(float(np.max(np.abs(ours["params"][t][k] - run.params[t][k])
                           / np.maximum(1.0, np.abs(run.params[t][k]))))
              for t in range(10) for k in run.params[t])
    print(f"SwAV frozen prototypes [float32]: params {err:.3g}")
    assert err <= F32
    proto = [run.params[t]["head.prototypes.weight"] for t in range(10)]
    assert all(np.array_equal(proto[t], values["head.prototypes.weight"]) for t in range(5))
    assert not np.array_equal(proto[5], proto[4])


def test_auto_scale_lr_needs_the_batch_size():
    cfg = copy.deepcopy(SGD_AMP_DICT)
    cfg["auto_scale_lr"] = dict(base_batch_size=256, enable=True)
    with pytest.raises(oss.ConfigError, match="batch_size"):
        oss.build_optimizer(cfg, {"w": np.zeros(2, np.float32)})
    dev = compare(cfg, MIX, steps=5, steps_per_epoch=13, amp=True,
                  jax_kwargs=dict(batch_size=64), ref_kwargs=dict(modules=MIX_MODULES,
                                                                  batch_size=64))
    dev.check(F32)
    assert dev.run.lr["head.fc.weight"][0] == pytest.approx(0.05 * 64 / 256)
    assert math.isclose(dev.ours["lr"][0]["head.fc.weight"], 0.05 / 4, rel_tol=1e-7)
