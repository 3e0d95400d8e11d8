"""Reading an optax_selfsup optimizer state: what is in force now, for logging."""

from __future__ import annotations

import jax

from .transforms.clip import ClipState
from .transforms.loss_scale import LossScaleState
from .transforms.torch_optimizer import TorchOptimizerState


def _find(opt_state, cls, what, required=True):
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, cls))
             if isinstance(s, cls)]
    if len(found) > 1:
        raise ValueError(f"{len(found)} {what} states found in opt_state; pass one")
    if not found:
        if required:
            raise ValueError(f"no {what} state found in opt_state")
        return None
    return found[0]


def current_hparams(opt_state) -> dict:
    """Per-parameter lr and momentum in force at the last update (mmcv's logged values).

    Returns ``{'lr': tree, 'momentum': tree or None}`` plus ``'grad_norm'`` (the
    pre-clip norm) when gradients are clipped and ``'loss_scale'`` with fp16.
    """
    opt = _find(opt_state, TorchOptimizerState, "optax_selfsup optimizer")
    out = {"lr": opt.lr.as_tree(),
           "momentum": None if opt.momentum is None else opt.momentum.as_tree()}
    clip = _find(opt_state, ClipState, "grad_clip", required=False)
    if clip is not None:
        out["grad_norm"] = clip.grad_norm
    scaler = _find(opt_state, LossScaleState, "loss scale", required=False)
    if scaler is not None:
        out["loss_scale"] = scaler.scale
    return out


def loss_scale(opt_state):
    """The factor to multiply the loss by before taking gradients (fp16 configs)."""
    return _find(opt_state, LossScaleState, "loss scale (the config has no fp16)").scale
