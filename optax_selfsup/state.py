"""Reading an optax_selfsup optimizer state: what is in force now, for logging.

Every reader takes the whole optimizer state (``opt_state``, or an
``nnx.Optimizer``'s ``opt_state``, whose boxes are unwrapped) and finds its part
in it, wherever a chain or wrapper put it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .pytrees import unbox
from .transforms.accumulate import AccumulateState, LossDivisorState
from .transforms.clip import ClipState
from .transforms.clocked import ClockedState
from .transforms.flat_optimizer import FlatOptimizerState
from .transforms.loss_scale import LossScaleState
from .transforms.torch_optimizer import TorchOptimizerState, params_structure


def _all(opt_state, cls):
    is_state = lambda x: isinstance(x, cls)
    return [s for s in jax.tree.leaves(unbox(opt_state), is_leaf=is_state) if is_state(s)]


def _find(opt_state, cls, what, required=True):
    found = _all(opt_state, cls)
    if len(found) > 1:
        raise ValueError(f"{len(found)} {what} states found in opt_state; pass one")
    if not found:
        if required:
            raise ValueError(f"no {what} state found in opt_state")
        return None
    return found[0]


def current_hparams(opt_state) -> dict:
    """Per-parameter lr and momentum of the iteration of the last ``update`` call.

    What mmcv / MMEngine log at that iteration, also on accumulation micro-steps and
    after an fp16-skipped update. Returns ``{'lr': tree, 'momentum': tree or None}``
    (trees shaped like the params; the momentum is ``betas[0]`` for the Adam family and
    Lamb), plus ``'weight_decay'`` (a tree) when a schedule moves the weight decay
    (MMEngine's ``param_scheduler``), ``'grad_norm'`` (the pre-clip norm of the last
    applied update) when gradients are clipped by norm and ``'loss_scale'`` with fp16 /
    AMP. Before the first update the values are those of iteration 0.
    """
    opt = _find(opt_state, (TorchOptimizerState, FlatOptimizerState), "optax_selfsup optimizer")
    treedef = (opt.layout.layout.treedef if isinstance(opt, FlatOptimizerState)
               else params_structure(opt))
    as_tree = lambda v: None if v is None else jax.tree.unflatten(treedef, list(v))
    out = {"lr": as_tree(opt.lr), "momentum": as_tree(opt.momentum)}
    if getattr(opt, "weight_decay", None) is not None:
        out["weight_decay"] = as_tree(opt.weight_decay)
    clip = _find(opt_state, ClipState, "grad_clip", required=False)
    if opt.grad_norm is not None:  # the clip fused into the optimizer (build_optimizer)
        out["grad_norm"] = opt.grad_norm
    elif clip is not None:
        out["grad_norm"] = clip.grad_norm
    scaler = _find(opt_state, LossScaleState, "loss scale", required=False)
    if scaler is not None:
        out["loss_scale"] = scaler.scale
    return out


def group_values(tree, names=None) -> dict:
    """One scalar per distinct value of a per-parameter tree (e.g. ``current_hparams(s)['lr']``),
    keyed ``'<first parameter name>'``, for TensorBoard / CSV logging::

        {f"lr/{k}": v for k, v in oss.group_values(oss.current_hparams(s)["lr"]).items()}

    ``names`` defaults to the torch-style names of the tree's leaves.
    """
    from .names import torch_names

    leaves = [float(x) for x in jax.tree.leaves(tree)]
    names = torch_names(tree) if names is None else list(names)
    out: dict = {}
    seen: set = set()
    for name, value in zip(names, leaves):
        if value not in seen:
            seen.add(value)
            out[name] = value
    return out


def has_updated(opt_state) -> jax.Array:
    """Whether the last ``update`` call applied an update (``optax.MultiSteps.has_updated``):
    False on an accumulation micro-step and on an fp16 update skipped for non-finite
    gradients; True for a transformation that always updates."""
    flags = [s.updated for s in _all(opt_state, AccumulateState)]
    flags += [s.finite for s in _all(opt_state, LossScaleState)]
    result = jnp.asarray(True)
    for flag in flags:
        result = result & flag
    return result


def iteration(opt_state) -> jax.Array:
    """The number of ``update`` calls so far: the global micro-iteration the next call
    runs at (mmcv's ``runner.iter``); the last call ran at ``iteration(s) - 1``."""
    for cls, field in ((ClockedState, "iteration"), (AccumulateState, "count"),
                       (TorchOptimizerState, "count"), (FlatOptimizerState, "count")):
        found = _all(opt_state, cls)
        if found:
            return getattr(found[0], field)
    raise ValueError("no optax_selfsup clock found in opt_state (oss.clocked, oss.accumulate "
                     "or an oss optimizer)")


def flat_layout_of(opt_state):
    """The ``FlatLayout`` of a ``layout='flat'`` optimizer state (flatten params with it)."""
    return _find(opt_state, FlatOptimizerState, "flat-layout optimizer").layout.layout


def loss_scale(opt_state) -> jax.Array:
    """The factor to multiply the loss by before taking the gradients the next ``update``
    gets (0.x ``fp16`` configs, MMEngine ``AmpOptimWrapper``): a float32 scalar.

    torch's ``scaler.scale(loss / f)`` as one number: the ``GradScaler`` scale divided
    (in float32, as torch's backward divides it) by ``f``, the accumulation divisor of
    the micro-iteration the next call runs at: 1 without accumulation, ``k`` with
    ``update_interval`` / ``accumulative_counts=k``, the remainder ``r`` in MMEngine's
    final shorter group. The scale itself, as mmcv / MMEngine log it, is
    ``current_hparams(opt_state)['loss_scale']``.
    """
    scaler = _find(opt_state, LossScaleState, "loss scale", required=False)
    divisors = [s.loss_divisor for s in _all(opt_state, LossDivisorState)]
    if scaler is None and not divisors:
        raise ValueError("no loss scale state found in opt_state (the config has no fp16 / "
                         "AmpOptimWrapper)")
    if len(divisors) > 1:
        raise ValueError(f"{len(divisors)} loss-dividing accumulation states found in "
                         "opt_state; pass one")
    scale = jnp.ones((), jnp.float32) if scaler is None else scaler.scale
    if divisors:
        scale = scale / divisors[0].astype(jnp.float32)
    return scale.astype(jnp.float32)
