"""``run_mmengine``: one config trained by MMEngine's real ``Runner``, recorded per iteration."""

from __future__ import annotations

import contextlib
import copy
import multiprocessing
import random
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler

from .layer_depth import bind_layer_depth
from .model import Indices, build_model
from .record import MMEngineRun
from .runner import Recorder, ReferenceRunner
from .upstream import cpu_amp, load_mmpretrain, trusted_checkpoints

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _epoch_loop(train_cfg: dict) -> bool:
    """Whether ``Runner.build_train_loop`` builds an ``EpochBasedTrainLoop`` (the real Runner
    decides it again, and refuses ``type`` and ``by_epoch`` together)."""
    if "type" in train_cfg:
        return train_cfg["type"].split(".")[-1] == "EpochBasedTrainLoop"
    return bool(train_cfg.get("by_epoch"))


@contextlib.contextmanager
def _global_rng_kept():
    """The Runner seeds python, numpy and torch globally; give the caller its states back."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def run_mmengine(cfg: Mapping, values: Mapping[str, np.ndarray],
                 grads: Sequence[Mapping[str, np.ndarray]], *, steps_per_epoch: int,
                 modules: Mapping[str, object] | None = None, dtype=None,
                 frozen: Iterable[str] = (), inject_inf: Mapping[int, str] | None = None,
                 checkpoint_iters: Iterable[int] = (), checkpoint_epochs: Iterable[int] = (),
                 checkpoint_dir: str | None = None, batch_size: int | None = None,
                 resume_from: str | None = None, log_level: str = "WARNING") -> MMEngineRun:
    """Train ``values`` with ``cfg`` under MMEngine's ``Runner``; see the package docstring."""
    load_mmpretrain()
    cfg = copy.deepcopy(dict(cfg))
    if dtype is None:
        dtype = np.result_type(*values.values())
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else _DTYPES[np.dtype(dtype).name]
    if (cfg.get("auto_scale_lr") or {}).get("enable", False) and batch_size is None:
        raise ValueError("auto_scale_lr is enabled: give the total batch size (GPUs x per-GPU "
                         "batch) as batch_size=, the Runner scales the lr by it")
    checkpoint_iters, checkpoint_epochs = set(checkpoint_iters), set(checkpoint_epochs)
    if checkpoint_dir is None and (checkpoint_iters or checkpoint_epochs):
        checkpoint_dir = tempfile.mkdtemp(prefix="mmengine_ref_ckpt_")
    recorder = Recorder(len(grads), steps_per_epoch, checkpoint_iters, checkpoint_epochs,
                        checkpoint_dir)
    with _global_rng_kept():  # module constructors draw initial weights; the Runner seeds
        model = build_model(values, modules or {}, torch_dtype, set(frozen))
        model._given_grads = _grads_as_tensors(grads, inject_inf, torch_dtype)
        if cfg.get("model") and "LearningRateDecay" in str(
                cfg["optim_wrapper"].get("constructor", "")):
            bind_layer_depth(model, cfg["model"])  # the one consumer of get_layer_depth
        dataloader = _dataloader(steps_per_epoch, _epoch_loop(cfg["train_cfg"]), batch_size or 1)
        runner = _train(cfg, model, dataloader, recorder, log_level, resume_from)
    return recorder.result(runner, model)


def _dataloader(length: int, by_epoch: bool, batch_size: int) -> torch.utils.data.DataLoader:
    """``length`` batches of indices, in order, with the samplers real configs use
    (``InfiniteSampler`` also spares the iteration loop ``_InfiniteDataloaderIterator``'s 2 s
    sleep at each restart). Only ``auto_scale_lr`` reads the batch size."""
    dataset = Indices(length * batch_size)
    sampler = (DefaultSampler(dataset, shuffle=False, seed=0) if by_epoch
               else InfiniteSampler(dataset, shuffle=False, seed=0))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler)


def _train(cfg: dict, model, dataloader, recorder: Recorder, log_level: str,
           resume_from: str | None) -> ReferenceRunner:
    default_hooks = cfg.get("default_hooks") or {}
    hooks = dict(logger=None, checkpoint=None,
                 param_scheduler=default_hooks.get("param_scheduler",
                                                   dict(type="ParamSchedulerHook")))
    trusted = trusted_checkpoints() if resume_from is not None else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="mmengine_ref_") as work_dir, cpu_amp(), trusted:
        runner = ReferenceRunner(
            model=model, work_dir=work_dir, train_dataloader=dataloader,
            train_cfg=cfg["train_cfg"], optim_wrapper=cfg["optim_wrapper"],
            param_scheduler=cfg.get("param_scheduler"), auto_scale_lr=cfg.get("auto_scale_lr"),
            default_hooks=hooks,
            custom_hooks=list(cfg.get("custom_hooks") or []) + recorder.hooks(),
            default_scope=cfg.get("default_scope", "mmengine"),
            env_cfg=dict(mp_cfg=dict(mp_start_method=multiprocessing.get_start_method())),
            log_level=log_level, visualizer=dict(type="Visualizer"),
            randomness=dict(seed=0), experiment_name=f"mmengine_ref_{uuid.uuid4().hex[:12]}",
            load_from=resume_from, resume=resume_from is not None, cfg=cfg)
        try:
            runner.train()
        except recorder.Stop:
            pass
        finally:
            runner.release()
    return runner


def _grads_as_tensors(grads, inject_inf, dtype) -> list[dict[str, torch.Tensor]]:
    out = []
    for t, g in enumerate(grads):
        step = {k: torch.tensor(np.asarray(v), dtype=dtype) for k, v in g.items()}
        if inject_inf and t in inject_inf:
            step[inject_inf[t]].view(-1)[0] = float("inf")
        out.append(step)
    return out

