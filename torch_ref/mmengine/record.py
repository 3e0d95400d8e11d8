"""The record of one reference run."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class MMEngineRun:
    """What one ``run_mmengine`` call recorded. ``T`` = iterations run; ``t`` is 0-based.

    Per parameter name (``names``, the model's registration order), arrays of length ``T``:
    ``lr``, ``momentum`` (``momentum`` of SGD / LARS / RMSprop, ``betas[0]`` of Adam-family and
    Lamb; ``None`` when the optimizer has neither) and ``weight_decay``: the value in the
    parameter's group during iteration ``t``, i.e. what an optimizer step at ``t`` used (after
    the ``before_train_*`` hooks, before ``ParamSchedulerHook``).
    """

    names: list[str]
    lr: dict[str, np.ndarray]
    momentum: dict[str, np.ndarray] | None
    weight_decay: dict[str, np.ndarray]
    #: ``params[t]``: every parameter after iteration ``t`` (after all its hooks).
    params: list[dict[str, np.ndarray]]
    #: ``stepped[t]``: ``optimizer.step()`` ran at ``t`` (False: accumulating, or AMP skipped).
    stepped: np.ndarray
    #: ``loss_scale[t]``: the scale iteration ``t``'s loss was multiplied by (AMP), else None.
    loss_scale: np.ndarray | None
    #: ``grad_norm[t]``: the pre-clip norm ``train/grad_norm`` logged at ``t`` (NaN where no
    #: clipping ran); None without ``clip_grad``.
    grad_norm: np.ndarray | None
    #: Per name: the param group as the constructor built it (before any scheduler), without
    #: ``params``: ``lr``, ``weight_decay`` and every key the constructor copied in.
    groups: dict[str, dict]
    #: ``optim_wrapper.optimizer.state_dict()`` at the end, tensors as numpy arrays; its
    #: ``state`` is keyed by ``param_index[name]``.
    optimizer_state: dict
    param_index: dict[str, int]
    #: ``GradScaler.state_dict()`` at the end (AMP), else None.
    loss_scaler_state: dict | None
    #: ``state_dict()`` of every param scheduler at the end, in config order.
    scheduler_states: list[dict]
    #: Saved checkpoints: ``('iter', k)`` / ``('epoch', e)`` -> path of the ``.pth`` file.
    checkpoints: dict[tuple[str, int], str] = field(default_factory=dict)

    def group_of(self, name: str, t: int) -> dict[str, float]:
        """The recorded hyperparameters of ``name`` at iteration ``t``."""
        out = {"lr": float(self.lr[name][t]), "weight_decay": float(self.weight_decay[name][t])}
        if self.momentum is not None:
            out["momentum"] = float(self.momentum[name][t])
        return out


def to_numpy(obj):
    """Tensors (nested in dicts, lists, tuples) as numpy copies; everything else deep-copied."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_numpy(v) for v in obj)
    return copy.deepcopy(obj)
