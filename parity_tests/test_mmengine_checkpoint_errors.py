"""MMEngine checkpoints that ``oss.from_torch_checkpoint`` refuses: one line naming the key,
the param group, the scheduler or the value, never a silent continuation of another run.

The files are real: the small SGD run of ``test_mmengine_checkpoint`` (MMEngine 0.10.7's
``Runner``: a LinearLR warmup and a by-epoch MultiStepLR, ``paramwise_cfg``), edited
or continued with another config.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from test_mmengine_checkpoint import SGD_EPOCHS, _template, small_run_files

import optax_selfsup as oss
from optax_selfsup.checkpoint import TorchCheckpointError


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return small_run_files(str(tmp_path_factory.getbasetemp() / "mmengine_small_run"))


def _ckpt(small_run):
    return torch.load(small_run[1].checkpoints[("epoch", 1)], weights_only=False)


def _cfg(**edits):
    cfg = copy.deepcopy(SGD_EPOCHS)
    for path, value in edits.items():
        *keys, last = path.split("__")
        node = cfg
        for key in keys:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = int(last) if isinstance(node, list) else last
        if value is None:
            del node[last]
        else:
            node[last] = value
    return cfg


@pytest.mark.parametrize("cfg,fragment", [
    (_cfg(optim_wrapper__optimizer=dict(type="LARS", lr=0.1, momentum=0.9, weight_decay=1e-4),
          default_scope="mmpretrain"),
     "the torch optimizer is SGD (its param_groups lack eta, which LARS has)"),
    (_cfg(optim_wrapper__paramwise_cfg=None),
     "the checkpoint's optimizer has 5 param groups; this config builds 1"),
    (_cfg(optim_wrapper__optimizer__lr=0.2),
     "param group 0 ('backbone.bn.weight') has initial_lr=0.1 (its base before any "
     "scheduler) in the checkpoint; this config builds 0.2"),
    (_cfg(param_scheduler__1__milestones=[2]),
     "param_scheduler[1] (MultiStepLR) has milestones=Counter({1: 1, 2: 1}) in the "
     "checkpoint, (2,) in this config"),
    (_cfg(param_scheduler__1__gamma=0.25),
     "param_scheduler[1] (MultiStepLR) has gamma=0.5 in the checkpoint, 0.25 in this config"),
    (_cfg(train_cfg__max_epochs=6),
     "param_scheduler[1] (MultiStepLR) has end=3 in the checkpoint, 6 in this config"),
    (_cfg(param_scheduler=[dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=3)]),
     "has 2 param schedulers; this config's param_scheduler has 1"),
    (_cfg(param_scheduler__1=dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.5)),
     "the state of param_scheduler[1] (StepLR) has no 'step_size'"),
    (_cfg(optim_wrapper__optimizer__weight_decay=1e-3),
     "param group 2 ('backbone.conv.weight') has weight_decay=0.0001 at iteration 4 in the "
     "checkpoint; this config (its optim_wrapper) gives 0.001 there"),
    (_cfg(optim_wrapper__type="AmpOptimWrapper"),
     "the config uses fp16 loss scaling but the checkpoint has no GradScaler state (it would "
     "be in optimizer['loss_scaler'])"),
    (dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4),
          lr_config=dict(policy="Fixed"), runner=dict(type="EpochBasedRunner", max_epochs=3)),
     "was written by MMEngine's Runner (it has message_hub / param_schedulers); this config "
     "is an MMSelfSup 0.x (mmcv 1.x) config"),
])
def test_a_checkpoint_of_another_config_is_refused(small_run, cfg, fragment):
    with warnings.catch_warnings(), pytest.raises(TorchCheckpointError) as err:
        warnings.simplefilter("ignore")
        oss.from_torch_checkpoint(_ckpt(small_run), cfg, _template(), steps_per_epoch=4)
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_another_steps_per_epoch_is_refused(small_run):
    with pytest.raises(TorchCheckpointError, match=r"steps_per_epoch=3, but the run that "
                                                   r"wrote it had 4 iterations per epoch \(its "
                                                   r"message_hub: max_iters=12, max_epochs=3\)"):
        oss.from_torch_checkpoint(_ckpt(small_run), SGD_EPOCHS, _template(), steps_per_epoch=3)


def test_the_group_values_are_checked_against_the_schedule(small_run):
    ckpt = _ckpt(small_run)
    ckpt["optimizer"]["param_groups"][3]["lr"] = 0.1  # as if the MultiStepLR had not stepped
    with pytest.raises(TorchCheckpointError, match=(
            r"param group 3 \('head.fc.weight'\) has lr=0.1 at iteration 4 in the checkpoint; "
            r"this config \(its param_scheduler\) gives 0.05 there")):
        oss.from_torch_checkpoint(ckpt, SGD_EPOCHS, _template(), steps_per_epoch=4)
    ckpt = _ckpt(small_run)
    ckpt["param_schedulers"][0]["_global_step"] = 3
    with pytest.raises(TorchCheckpointError, match=r"param_scheduler\[0\] \(LinearLR\) has "
                                                   r"stepped _global_step=3 times, but meta "
                                                   r"epoch=1, iter=4 say 4 iterations"):
        oss.from_torch_checkpoint(ckpt, SGD_EPOCHS, _template(), steps_per_epoch=4)


@pytest.mark.parametrize("edit,fragment", [
    (lambda c: c.pop("param_schedulers"), "has no 'param_schedulers' (saved with "
     "save_param_scheduler=False)"),
    (lambda c: c.pop("optimizer"), "has no 'optimizer' (keys: ['message_hub', 'meta', "
     "'param_schedulers', 'state_dict'])"),
    (lambda c: c.pop("state_dict"), "has no 'state_dict'"),
    (lambda c: c["meta"].pop("epoch"), "meta has no 'epoch'"),
    (lambda c: c["meta"].update(iter=-3), "meta['iter']=-3 is not an iteration"),
    (lambda c: c["meta"].update(epoch=1.5), "meta['epoch']=1.5 is not an epoch count"),
    (lambda c: c["meta"].update(iter=40, epoch=10), "meta['iter']=40 is past this config's run "
     "of 12 iterations"),
    (lambda c: c.update(optimizer={"a": c["optimizer"], "b": c["optimizer"]}),
     "optimizer holds several optimizers (a, b: an OptimWrapperDict)"),
    (lambda c: c["optimizer"].update(loss_scaler={"scale": 1.0}),
     "optimizer['loss_scaler'] must be a GradScaler state_dict"),
    (lambda c: c.update(param_schedulers={"a": []}), "param_schedulers is a dict (a)"),
    # values of the wrong type: still one line, naming them (not a TypeError from inside)
    (lambda c: c["param_schedulers"][0].update(start_factor=torch.tensor([1.0, 2.0])),
     "param_scheduler[0] (LinearLR) has start_factor=tensor([1., 2.]) in the checkpoint, 0.1 "
     "in this config"),
    (lambda c: c["param_schedulers"][0].update(_global_step=torch.tensor([4, 4])),
     "param_scheduler[0] (LinearLR) has stepped _global_step=tensor([4, 4]) times"),
    (lambda c: c["optimizer"]["param_groups"][0].update(lr="x"),
     "param group 0 ('backbone.bn.weight') has lr='x', which is not a number"),
    (lambda c: c["optimizer"]["param_groups"][1].update(initial_lr=None, momentum=[0.9]),
     "param group 1 ('backbone.bn.bias') has momentum=[0.9], which is not a number"),
    (lambda c: c["optimizer"]["state"].update({0: None}),
     "optimizer['state'][0] is a NoneType, not a dict of slots"),
])
def test_a_bad_mmengine_checkpoint_is_named(small_run, edit, fragment):
    ckpt = _ckpt(small_run)
    edit(ckpt)
    with pytest.raises(TorchCheckpointError) as err:
        oss.from_torch_checkpoint(ckpt, SGD_EPOCHS, _template(), steps_per_epoch=4)
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_tensor_valued_entries_are_read_as_their_numbers(small_run):
    ckpt = _ckpt(small_run)
    ckpt["param_schedulers"][0]["_global_step"] = torch.tensor(4)
    ckpt["param_schedulers"][1]["gamma"] = np.float64(0.5)
    ckpt["optimizer"]["param_groups"][0]["lr"] = torch.tensor(0.05, dtype=torch.float64)
    resumed = oss.from_torch_checkpoint(ckpt, SGD_EPOCHS, _template(), steps_per_epoch=4)
    assert resumed.iteration == 4


def test_the_loss_scaler_settings_are_compared(small_run):
    cfg = _cfg(optim_wrapper__type="AmpOptimWrapper",
               optim_wrapper__loss_scale=dict(growth_interval=5))
    ckpt = _ckpt(small_run)
    ckpt["optimizer"]["loss_scaler"] = dict(scale=256.0, growth_factor=2.0, backoff_factor=0.5,
                                            growth_interval=3, _growth_tracker=2)
    with pytest.raises(TorchCheckpointError, match=r"optimizer\['loss_scaler'\]\["
                                                   r"'growth_interval'\]=3, this config's "
                                                   r"optim_wrapper.loss_scale gives 5"):
        oss.from_torch_checkpoint(ckpt, cfg, _template(), steps_per_epoch=4)
    ckpt["optimizer"]["loss_scaler"]["growth_interval"] = 5
    resumed = oss.from_torch_checkpoint(ckpt, cfg, _template(), steps_per_epoch=4)
    assert float(oss.loss_scale(resumed.opt_state)) == 256.0


def test_only_the_message_hub_gets_stand_ins(small_run, tmp_path):
    """The file loads with weights_only=True plus inert stand-ins for the message hub;
    anything else weights_only refuses is still refused."""
    from optax_selfsup.checkpoint import load_torch_checkpoint

    ckpt = load_torch_checkpoint(small_run[1].checkpoints[("epoch", 1)])
    logged = ckpt["message_hub"]["log_scalars"]["train/lr"]
    assert type(logged).__name__ == "LoggedScalars" and "_log_history" in vars(logged)
    path = tmp_path / "other.pth"
    torch.save({"meta": {}, "x": np.random.default_rng(0)}, path)
    with pytest.raises(TorchCheckpointError, match=r"refused it"):
        load_torch_checkpoint(path)


def test_an_epoch_wise_simsiam_hook_under_an_iteration_loop_is_refused(small_run):
    cfg = _cfg(optim_wrapper__paramwise_cfg=dict(norm_decay_mult=0.0,
                                                  custom_keys={"head": dict(fix_lr=True)}),
               custom_hooks=[dict(type="SimSiamHook", fix_pred_lr=True, lr=0.05)],
               default_scope="mmpretrain",
               train_cfg=dict(type="IterBasedTrainLoop", max_iters=12))
    with warnings.catch_warnings(), pytest.raises(TorchCheckpointError, match=(
            r"SimSiamHook\(adjust_by_epoch=True\) under an IterBasedTrainLoop: MMEngine's "
            r"resume calls before_train_epoch again")):
        warnings.simplefilter("ignore")  # the by-epoch MultiStepLR under an iteration loop
        oss.from_torch_checkpoint(_ckpt(small_run), cfg, _template(), steps_per_epoch=4)
