"""mmcv 1.x checkpoints of a torch_ref run (``mmcv.runner.save_checkpoint``'s layout).

A checkpoint is ``{'meta': {'epoch', 'iter', 'time', ...}, 'state_dict': {name: tensor},
'optimizer': optimizer.state_dict()}``. ``state_dict`` is the model's
``state_dict()`` on the CPU when the module is given (parameters and buffers such
as BatchNorm's running statistics and ``num_batches_tracked``, in the module's
order, as mmcv writes it), else the named parameters. ``meta['iter']`` is the number of finished
iterations (the iteration a resumed run starts at) and ``meta['epoch']`` the finished
epochs, as mmcv's runners write them at an epoch end. With loss scaling the hook's
``GradScaler`` state is ``meta['fp16']['loss_scaler']``, as mmcv's fp16 optimizer
hooks keep it. Gradients of an unfinished accumulation group are not saved (mmcv
does not save them either).
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict

import torch


def checkpoint_dict(runner, named_parameters, meta=None, module=None) -> dict:
    """The checkpoint of ``runner`` (a ``torch_ref.Runner``) before its current iteration
    ``runner.iter``: call it from a ``record`` callback, or after a run. ``module``: the
    model whose ``state_dict()`` is saved (else the named parameters are)."""
    it = runner.iter
    spe = runner.steps_per_epoch or runner.max_iters
    meta = dict(meta or {})
    meta.update(epoch=it // spe, iter=it, time=time.asctime())
    scaler = getattr(getattr(runner, "optimizer_hook", None), "scaler", None)
    if scaler is not None:
        meta.setdefault("fp16", {})["loss_scaler"] = scaler.state_dict()
    return {
        "meta": meta,
        "state_dict": OrderedDict((n, p.detach().cpu().clone()) for n, p in (
            module.state_dict().items() if module is not None else named_parameters)),
        "optimizer": copy.deepcopy(runner.optimizer.state_dict()),
    }


def save_checkpoint(path, runner, named_parameters, meta=None, module=None) -> dict:
    """Write ``checkpoint_dict(runner, named_parameters, meta, module)`` to ``path``
    (torch.save)."""
    ckpt = checkpoint_dict(runner, named_parameters, meta, module)
    torch.save(ckpt, path)
    return ckpt
