"""The real ``Runner`` with two observation points, and the hooks that record the run.

``ReferenceRunner`` is ``mmengine.runner.Runner`` unchanged except that it keeps a copy of the
param groups right after ``build_optim_wrapper`` (before the schedulers touch them), skips the
environment report (``_log_env``: compiler and CUDA probes, seconds per Runner, no effect on
training) and can drop its global instances afterwards (``release``).

``Recorder`` adds two hooks to ``custom_hooks``: ``_Observe`` at priority HIGHEST records the
hyperparameters in force in ``after_train_iter`` (before every other hook of that stage, so
before ``ParamSchedulerHook`` at LOW), and ``_Collect`` at LOWEST records the parameters after the
iteration's hooks, saves checkpoints where asked (``Runner.save_checkpoint`` with the arguments
``CheckpointHook`` passes; ``CheckpointHook`` is VERY_LOW, so it too runs after the schedulers)
and ends a run shorter than the config's by raising ``Recorder.Stop``.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import MessageHub, MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner import EpochBasedTrainLoop, Runner
from mmengine.visualization import Visualizer

from .record import MMEngineRun, to_numpy


def _groups(optimizer) -> list[dict]:
    return [{k: to_numpy(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups]


class ReferenceRunner(Runner):
    """``Runner`` that remembers the param groups as the constructor built them."""

    groups_as_built: list[dict] | None = None

    def build_optim_wrapper(self, optim_wrapper):
        wrapper = super().build_optim_wrapper(optim_wrapper)
        if self.groups_as_built is None:  # Runner.resume calls it again on the built wrapper
            self.groups_as_built = _groups(wrapper.optimizer)
        return wrapper

    def _log_env(self, env_cfg):
        pass

    def release(self):
        """Close the log file and forget this run's logger, message hub, visualizer, scope."""
        for handler in list(self.logger.handlers):
            if isinstance(handler, logging.FileHandler):
                handler.close()
                self.logger.removeHandler(handler)
        for cls in (MMLogger, MessageHub, Visualizer, DefaultScope):
            cls._instance_dict.pop(self.experiment_name, None)


class _Observe(Hook):
    priority = "HIGHEST"

    def __init__(self, recorder):
        self.rec = recorder

    def before_train(self, runner):
        self.rec.start(runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.rec.before_iter(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.rec.observe(runner)


class _Collect(Hook):
    priority = "LOWEST"

    def __init__(self, recorder):
        self.rec = recorder

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.rec.collect(runner, batch_idx)

    def after_train_epoch(self, runner):
        self.rec.end_epoch(runner)


class Recorder:
    """Collects one run; ``hooks()`` go into ``custom_hooks``, ``result()`` builds the record."""

    class Stop(Exception):
        """Raised after the last requested iteration of a run shorter than the config's."""

    def __init__(self, num_iters, steps_per_epoch, ckpt_iters, ckpt_epochs, ckpt_dir):
        self.num_iters, self.steps_per_epoch = num_iters, steps_per_epoch
        self.ckpt_iters, self.ckpt_epochs, self.ckpt_dir = ckpt_iters, ckpt_epochs, ckpt_dir
        self.by_epoch, self.max_iters = None, None  # the train loop's, known at before_train
        # a resumed run: the iteration it starts at, and how many iterations its loop would run
        self.start_iter, self.remaining = 0, None
        self.hparams, self.params, self.stepped = [], [], []
        self.scales, self.norms = [], []
        self.checkpoints = {}
        self._steps = 0
        self._steps_before = 0
        self._norms_before = 0

    def hooks(self):
        return [_Observe(self), _Collect(self)]

    # -- during the run -------------------------------------------------------------------------
    def _count_steps(self, optimizer, args, kwargs):
        self._steps += 1

    @staticmethod
    def _norm_history(runner) -> np.ndarray:
        buffer = runner.message_hub.log_scalars.get("train/grad_norm")
        return np.zeros(0) if buffer is None else buffer.data[0]

    def start(self, runner):
        self.by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        self.max_iters = runner.max_iters
        self.start_iter = runner.iter  # after Runner.resume: the checkpoint's meta['iter']
        # an epoch loop runs whole epochs from runner.epoch (a resumed one replays the epoch
        # of an iteration checkpoint from its first batch); an iteration loop to max_iters
        self.remaining = ((runner.max_epochs - runner.epoch) * self.steps_per_epoch
                          if self.by_epoch else self.max_iters - self.start_iter)
        if not 0 < self.num_iters <= self.remaining:
            raise ValueError(f"{self.num_iters} gradients for a run of {self.remaining} "
                             f"iterations (from iteration {self.start_iter})")
        runner.optim_wrapper.optimizer.register_step_post_hook(self._count_steps)

    def before_iter(self, runner):
        self._steps_before = self._steps
        self._norms_before = len(self._norm_history(runner))
        scaler = getattr(runner.optim_wrapper, "loss_scaler", None)
        self.scales.append(None if scaler is None else float(scaler.get_scale()))

    def observe(self, runner):
        optimizer = runner.optim_wrapper.optimizer
        self.hparams.append([(g["lr"], _momentum(optimizer, g), g.get("weight_decay", 0.0))
                             for g in optimizer.param_groups])
        self.stepped.append(self._steps > self._steps_before)
        history = self._norm_history(runner)
        self.norms.append(float(history[-1]) if len(history) > self._norms_before else np.nan)

    def collect(self, runner, batch_idx):
        model = runner.model
        self.params.append({n: p.detach().cpu().numpy().copy()
                            for n, p in model.named_parameters()})
        done = runner.iter + 1
        if done in self.ckpt_iters:
            self._save(runner, "iter", done, by_epoch=False)
        epoch_end = self.by_epoch and batch_idx == self.steps_per_epoch - 1
        if done - self.start_iter == self.num_iters < self.remaining and not epoch_end:
            raise self.Stop

    def end_epoch(self, runner):
        if not self.by_epoch:
            return
        epoch = runner.epoch + 1
        if epoch in self.ckpt_epochs:
            self._save(runner, "epoch", epoch, by_epoch=True)
        if runner.iter - self.start_iter == self.num_iters < self.remaining:
            raise self.Stop

    def _save(self, runner, kind, step, by_epoch):
        filename = f"{kind}_{step}.pth"
        runner.save_checkpoint(self.ckpt_dir, filename, save_optimizer=True,
                               save_param_scheduler=True, by_epoch=by_epoch)
        self.checkpoints[(kind, step)] = os.path.join(self.ckpt_dir, filename)

    # -- afterwards -----------------------------------------------------------------------------
    def result(self, runner, model) -> MMEngineRun:
        wrapper = runner.optim_wrapper
        optimizer = wrapper.optimizer
        names = [n for n, _ in model.named_parameters()]
        group_index = {id(p): (gi, g) for gi, g in enumerate(optimizer.param_groups)
                       for p in g["params"]}
        index, position = {}, 0
        for group in optimizer.param_groups:
            for p in group["params"]:
                index[id(p)] = position
                position += 1
        named = [(n, p) for n, p in model.named_parameters() if id(p) in group_index]
        trained = [n for n, _ in named]
        hp = np.asarray(self.hparams, dtype=np.float64)  # (T, groups, 3); momentum may be NaN

        def per_name(column):
            return {n: hp[:, group_index[id(p)][0], column].copy() for n, p in named}

        has_momentum = _momentum_key(optimizer) is not None
        scaler = getattr(wrapper, "loss_scaler", None)
        clip = bool(getattr(wrapper, "clip_grad_kwargs", None))
        schedulers = runner.param_schedulers or []
        return MMEngineRun(
            names=names,
            lr=per_name(0), momentum=per_name(1) if has_momentum else None,
            weight_decay=per_name(2),
            params=self.params, stepped=np.asarray(self.stepped),
            loss_scale=np.asarray(self.scales) if scaler is not None else None,
            grad_norm=np.asarray(self.norms) if clip else None,
            groups={n: dict(runner.groups_as_built[group_index[id(p)][0]]) for n, p in named},
            optimizer_state=to_numpy(optimizer.state_dict()),
            param_index={n: index[id(p)] for n, p in named if n in trained},
            loss_scaler_state=to_numpy(scaler.state_dict()) if scaler is not None else None,
            scheduler_states=[to_numpy(s.state_dict()) for s in schedulers],
            checkpoints=self.checkpoints)


def _momentum_key(optimizer) -> str | None:
    for key in ("momentum", "betas"):
        if key in optimizer.defaults:
            return key
    return None


def _momentum(optimizer, group) -> float:
    key = _momentum_key(optimizer)
    if key is None:
        return float("nan")
    return group[key][0] if key == "betas" else group[key]

