"""MMEngine checkpoints continued in JAX, against MMEngine's own resume of the same file.

Each case trains with MMEngine 0.10.7's real ``Runner`` (``torch_ref.mmengine``), saves a real
checkpoint (``Runner.save_checkpoint``: meta, state_dict, message_hub, optimizer with
``base_param_settings`` / ``loss_scaler``, param_schedulers), resumes it with the real
``Runner.resume`` and continues M iterations; ``oss.from_torch_checkpoint`` reads the same
file and ``build_optimizer``'s chain continues the same M iterations on the same gradients.
Per iteration ``|ours - torch| / max(1, |torch|)``: float32 1e-5, float64 1e-12.
"""

from __future__ import annotations

import functools
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from mmengine_resume import Scenario, deviation
from test_mmengine_recipes import MAE_FT, RESNET, RESNET_MODULES, SIMCLR, VIT, VIT_MODULES, real

import optax_selfsup as oss
from optax_selfsup.checkpoint import CheckpointWarning, TorchCheckpointError
from optax_selfsup.names import nest_names
from torch_ref.mmengine import run_mmengine

F32, F64 = 1e-5, 1e-12


def report(name, devs, dtype):
    print(f"{name} [{np.dtype(dtype).name}]: max deviation {max(devs):.3g} over {len(devs)} "
          "iterations")


# -- LARS, paramwise_cfg (one group per parameter + base_param_settings): MMSelfSup 1.0 SimCLR,
#    an epoch checkpoint; the by-epoch cosine starts within the continued iterations ------------

def test_lars_simclr_epoch_checkpoint(tmp_path):
    sc = Scenario(real(SIMCLR), RESNET, RESNET_MODULES, steps_per_epoch=2, total=28,
                  checkpoint_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NormLayerWarning: the guessed norm layers are right
        devs, torch_run, resumed, path = sc.compare(("epoch", 6), 16)
    report("SimCLR LARS epoch_6", devs, np.float32)
    assert max(devs) <= F32, devs
    ckpt = torch.load(path, weights_only=False)
    assert len(ckpt["optimizer"]["param_groups"]) == len(RESNET)
    assert "base_param_settings" in ckpt["optimizer"]
    assert resumed.iteration == 12 == int(oss.iteration(resumed.opt_state))
    lr = torch_run.lr["backbone.conv1.weight"]
    assert lr[0] == pytest.approx(4.8 * (1e-4 + (1 - 1e-4) * 12 / 19))  # in the warmup
    assert lr[-1] < lr[9]  # the by-epoch cosine moved the lr after epoch 10
    # the uninterrupted run continues alike: MMEngine's resume of an epoch checkpoint is exact
    np.testing.assert_array_equal(torch_run.params[-1]["neck.mlp.2.weight"],
                                  sc.run().params[27]["neck.mlp.2.weight"])


# -- AdamW, MMPretrain layer decay, AmpOptimWrapper with a dynamic scale mid-growth: MAE
#    fine-tuning, an iteration checkpoint inside an epoch (every scheduler iteration-based) -------

def test_adamw_layer_decay_amp_iteration_checkpoint(tmp_path):
    cfg = real(MAE_FT)
    cfg["optim_wrapper"].update(type="AmpOptimWrapper",
                                loss_scale=dict(init_scale=2.0**10, growth_interval=3))
    sc = Scenario(cfg, VIT, VIT_MODULES, steps_per_epoch=4, total=16, amp=True,
                  inject_inf={4: "backbone.layers.0.attn.qkv.weight"}, checkpoint_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = sc.checkpoint(("iter", 7))
        torch_run = sc.resume_torch(path, 7, 9)
    scaler = torch.load(path, weights_only=False)["optimizer"]["loss_scaler"]
    # grown at 2, backed off at 4 (the inf), two finite steps since: 2 of 3 to the next growth
    assert scaler["scale"] == 2.0**10 and scaler["_growth_tracker"] == 2
    with pytest.warns(CheckpointWarning, match=r"meta epoch=1, iter=7 is an iteration "
                      r"checkpoint saved after 3 of the 4 iterations of epoch 1 .*runs epoch 1 "
                      r"again from its first batch.*nothing in this config moves by epoch"):
        resumed, ours, stepped, scales = sc.resume_jax(path, 7, 9)
    devs = [max(float(np.max(np.abs(o[k] - r[k]) / np.maximum(1, np.abs(r[k])))) for k in r)
            for o, r in zip(ours, torch_run.params)]
    report("MAE AdamW layer decay AMP iter_7", devs, np.float32)
    assert max(devs) <= F32, devs
    assert stepped == torch_run.stepped.tolist()
    np.testing.assert_array_equal(scales, torch_run.loss_scale)
    assert scales[:2] == [2.0**10, 2.0**11]  # the third finite step in a row grew it


# -- SGD with accumulation (IterBasedTrainLoop): a checkpoint inside a window and one at its end,
#    a final remainder window; paramwise rules, a value clip, a momentum schedule ---------------

SMALL = {"backbone.conv.weight": (2, 1, 3, 3), "backbone.bn.weight": (2,),
         "backbone.bn.bias": (2,), "head.fc.weight": (3, 2), "head.fc.bias": (3,)}
SMALL_MODULES = {"backbone.bn": ("bn", 2), "head.fc": ("linear", 3, 2)}

SGD_ACCUM = dict(
    optim_wrapper=dict(
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True),
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_lr_mult=2.0),
        clip_grad=dict(type="value", clip_value=0.05), accumulative_counts=3),
    param_scheduler=[
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=5),
        dict(type="CosineAnnealingMomentum", by_epoch=False, eta_min=0.8, begin=2, end=14)],
    train_cfg=dict(type="IterBasedTrainLoop", max_iters=17))  # 17 = 5 * 3 + 2: a remainder


@pytest.mark.parametrize("dtype,tol", [(np.float32, F32), (np.float64, F64)])
def test_sgd_accumulation_iteration_checkpoints(dtype, tol, tmp_path):
    sc = Scenario(SGD_ACCUM, SMALL, SMALL_MODULES, steps_per_epoch=4, total=17, dtype=dtype,
                  checkpoint_dir=str(tmp_path))
    uninterrupted = sc.run(("iter", 7), ("iter", 9))
    for k in (7, 9):  # 7: one micro-batch into the window 6, 7, 8; 9: a window's end
        devs, torch_run, resumed, _ = sc.compare(("iter", k), 17 - k)
        report(f"SGD accumulate iter_{k}", devs, dtype)
        assert max(devs) <= tol, devs
        assert torch_run.stepped.tolist() == [(t + 1) % 3 == 0 or t == 16
                                              for t in range(k, 17)]
        lost = max(float(np.max(np.abs(torch_run.params[t][n] - uninterrupted.params[k + t][n])))
                   for t in range(17 - k) for n in SMALL)
        # MMEngine's resume restarts the window with empty gradients: iteration 6's is lost
        assert (lost > 1e-3) if k == 7 else (lost == 0.0), lost


# -- a Flax model (Conv + square Dense), AdamW, a by-epoch cosine and a betas[0] schedule, an
#    epoch checkpoint continued with convert=oss.torch_to_flax_layout --------------------------

class FlaxNet(nn.Module):
    @nn.compact
    def __call__(self, x):  # NHWC
        h = nn.Conv(4, (3, 3), name="conv")(x).mean((1, 2))
        return nn.Dense(4, name="fc")(h)  # square: a transposed kernel has the same shape


FLAX_TORCH = {"conv.weight": (4, 2, 3, 3), "conv.bias": (4,), "fc.weight": (4, 4),
              "fc.bias": (4,)}
FLAX_MODULES = {"conv": ("conv", 4, 2, 3), "fc": ("linear", 4, 4)}
ADAMW_EPOCHS = dict(
    optim_wrapper=dict(optimizer=dict(type="AdamW", lr=1e-2, weight_decay=0.05,
                                      betas=(0.9, 0.99), amsgrad=True)),
    param_scheduler=[
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=4),
        dict(type="CosineAnnealingLR", by_epoch=True, eta_min=1e-4),
        dict(type="CosineAnnealingMomentum", by_epoch=False, eta_min=0.8)],
    train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=4))


@pytest.mark.parametrize("dtype,tol", [(np.float32, F32),
                                       pytest.param(np.float64, F64, marks=pytest.mark.slow)])
def test_flax_layout_epoch_checkpoint(dtype, tol, tmp_path):
    with jax.enable_x64(dtype == np.float64):
        flax_params = FlaxNet().init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 5, 2)))["params"]
    sc = Scenario(ADAMW_EPOCHS, FLAX_TORCH, FLAX_MODULES, steps_per_epoch=3, total=12,
                  dtype=dtype, flax_params=flax_params, checkpoint_dir=str(tmp_path))
    devs, torch_run, resumed, path = sc.compare(("epoch", 2), 6)
    report("Flax AdamW epoch_2", devs, dtype)
    assert max(devs) <= tol, devs
    assert resumed.params["fc"]["kernel"].shape == (4, 4)
    assert torch_run.lr["fc.weight"][3] < torch_run.lr["fc.weight"][2]  # the epoch cosine
    ckpt = torch.load(path, weights_only=False)
    assert "momentum" in ckpt["optimizer"]["param_groups"][0]  # MMEngine's betas[0] copy


# -- OneCycleLR: MMEngine pickles the scheduler itself (a bound method in its state), so the
#    file needs weights_only=False; the dict continues, OneCycle's own initial_lr accepted ----

ONECYCLE = dict(
    optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4)),
    param_scheduler=[dict(type="OneCycleLR", eta_max=0.5, by_epoch=False, total_steps=12)],
    train_cfg=dict(type="IterBasedTrainLoop", max_iters=12))


def test_a_onecycle_checkpoint_continues_from_the_loaded_dict(tmp_path):
    sc = Scenario(ONECYCLE, SMALL, SMALL_MODULES, steps_per_epoch=4, total=12,
                  checkpoint_dir=str(tmp_path))
    path = sc.checkpoint(("iter", 5))
    with pytest.raises(TorchCheckpointError, match=r"refused it \(it needs mmengine.optim."
                                                   r"scheduler.param_scheduler."
                                                   r"OneCycleParamScheduler\); if you trust"):
        oss.from_torch_checkpoint(path, ONECYCLE, _template())
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["optimizer"]["param_groups"][0]["initial_lr"] == pytest.approx(0.5 / 25)
    torch_run = sc.resume_torch(path, 5, 7)
    _, ours, stepped, _ = sc.resume_jax(ckpt, 5, 7)
    devs = [deviation(o, r) for o, r in zip(ours, torch_run.params)]
    report("SGD OneCycleLR iter_5", devs, np.float32)
    assert max(devs) <= F32, devs


# -- an iteration checkpoint of an EpochBasedTrainLoop with a by-epoch scheduler: MMEngine's
#    resume replays the epoch, so it is refused ----------------------------------------------

SGD_EPOCHS = dict(
    optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4),
                       paramwise_cfg=dict(norm_decay_mult=0.0)),
    param_scheduler=[dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=3),
                     dict(type="MultiStepLR", by_epoch=True, milestones=[1, 2], gamma=0.5)],
    train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=3))


@functools.cache
def small_run_files(directory: str):
    """The small SGD run: epoch_1.pth, iter_4.pth (epoch 0's end), iter_6.pth (inside epoch 1);
    made once per session (test_mmengine_checkpoint_errors reads the same files)."""
    sc = Scenario(SGD_EPOCHS, SMALL, SMALL_MODULES, steps_per_epoch=4, total=12,
                  checkpoint_dir=directory)
    run = run_mmengine(sc.cfg, sc.values, sc.grads, steps_per_epoch=4, modules=sc.modules,
                       checkpoint_iters=[4, 6], checkpoint_epochs=[1], checkpoint_dir=directory)
    return sc, run


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return small_run_files(str(tmp_path_factory.getbasetemp() / "mmengine_small_run"))


def _template():
    return nest_names({k: jnp.zeros(s, jnp.float32) for k, s in SMALL.items()})


def test_an_epoch_checkpoint_of_the_small_run_continues(small_run):
    sc, run = small_run
    path = run.checkpoints[("epoch", 1)]
    torch_run = sc.resume_torch(path, 4, 8)
    _, ours, _, _ = sc.resume_jax(path, 4, 8)
    devs = [max(float(np.max(np.abs(o[k] - r[k]))) for k in r)
            for o, r in zip(ours, torch_run.params)]
    assert max(devs) <= F32, devs


@pytest.mark.parametrize("k,done", [(4, 4), (6, 2)])
def test_an_iteration_checkpoint_inside_an_epoch_loop_is_refused(small_run, k, done):
    sc, run = small_run
    path = run.checkpoints[("iter", k)]
    epoch = (k - 1) // 4
    # what MMEngine does with it: epoch `epoch` again, the MultiStepLR one epoch behind
    torch_run = sc.resume_torch(path, k, 4)
    replayed, uninterrupted = torch_run.lr["head.fc.weight"], run.lr["head.fc.weight"][k:k + 4]
    assert list(replayed) == [0.1 / 2**epoch] * 4
    assert list(uninterrupted) != list(replayed)
    with pytest.raises(TorchCheckpointError, match=(
            rf"meta epoch={epoch}, iter={k} is an iteration checkpoint saved after {done} of "
            rf"the 4 iterations of epoch {epoch} of an EpochBasedTrainLoop: MMEngine's resume "
            rf"runs epoch {epoch} again from its first batch.*param_scheduler\[1\] "
            rf"\(MultiStepLR\) acts {done} iterations later.*continue from an epoch "
            rf"checkpoint")) as err:
        oss.from_torch_checkpoint(path, SGD_EPOCHS, _template(), steps_per_epoch=4)
    assert "\n" not in str(err.value)
