"""The MMEngine side of ``optax-selfsup plot``: the run, the reference and the markers.

For an MMEngine config (MMSelfSup 1.x, MMPretrain) the reference is the real MMEngine
``Runner`` (``torch_ref.mmengine``) trained with zero gradients on one tensor per group of
the chosen model. MMEngine finds norm layers and depthwise convolutions by their torch type;
the reference's tensors get the types optax_selfsup's module guess gives the model (what
``describe`` shows), so the two sides draw the same groups and the plot compares their
schedules. Nothing here imports jax, torch or matplotlib at module level.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

from ..errors import ConfigError

MAX_ITERS = 20_000  # the real Runner: about 1 ms per iteration and recorded tensor


@dataclasses.dataclass
class Run:
    """What the figure's markers and title need (``Clock``'s attribute names)."""

    steps_per_epoch: int | None
    max_iters: int
    epoch_based: bool
    warmup_end: int | None


def setup(args, cfg) -> tuple[int, Run]:
    """``(steps per epoch for the builders, run)``; the compressed length when
    --steps-per-epoch is not given, as ``parity`` compresses."""
    from ..demo import COMPRESSED_ITERS
    from ..demo_mmengine import train_loop_length, warmup_end

    if not cfg.get("param_scheduler"):
        raise ConfigError(f"{args.config}: no param_scheduler to plot")
    by_epoch, max_epochs, max_iters = train_loop_length(cfg)
    steps = args.steps_per_epoch
    if by_epoch:
        steps = steps or max(2, COMPRESSED_ITERS // max_epochs)
        max_iters = max_epochs * steps
    else:
        steps = steps or max_iters  # only by-epoch schedulers read it
    if max_iters > MAX_ITERS:
        run = f"{max_epochs} epochs x {steps} iterations" if by_epoch else "train_cfg.max_iters"
        raise ConfigError(f"{args.config}: this run has {max_iters} iterations ({run}); plot "
                          f"of an MMEngine config draws at most {MAX_ITERS} (the real Runner "
                          f"runs them): pass a smaller --steps-per-epoch or a shorter run "
                          f"(--cfg-options train_cfg.max_epochs=N or train_cfg.max_iters=N)")
    return steps, Run(steps if by_epoch else None, max_iters, by_epoch, warmup_end(cfg, steps))


def module_layers(params) -> tuple[list[str], list[str], dict[str, str]]:
    """``(norm_layers, dwconv_layers, kind per torch name)`` of the whole model, as
    optax_selfsup's guess finds them (the module paths, escaped as regexes)."""
    import jax

    from .. import torch_names
    from ..names import leaf_names
    from ..paramwise.module_kinds import guess_module_kinds

    names = torch_names(params)
    shapes = [leaf.shape for leaf in jax.tree.leaves(params)]
    kinds = guess_module_kinds(names, shapes, raw_names=leaf_names(params))
    path = lambda name: name.rpartition(".")[0]
    norm = sorted({re.escape(path(n)) for n in kinds.norm})
    dwconv = sorted({re.escape(path(n)) for n in kinds.dwconv})
    kind = {n: "norm" if kinds.is_norm(n) else "dwconv" if kinds.is_dwconv(n) else "other"
            for n in names}
    return norm, dwconv, kind


def reference(cfg, steps, groups, max_iters, batch_size=None) -> dict:
    """Per iteration and group: lr, momentum and weight decay in force, from the real Runner
    with zero gradients."""
    import numpy as np

    from torch_ref.mmengine import run_mmengine

    from ..demo_mmengine import reference_config

    values, modules = {}, {}
    for g in groups:  # the values are zeros: only the kind, the name and the rank matter
        name, owner = g["name"], g["name"].rpartition(".")[0]
        if g["kind"] == "norm":
            values[name], modules[owner] = np.zeros(1, np.float32), ("bn", 1)
        elif g["kind"] == "dwconv":
            values[name], modules[owner] = np.zeros((1, 1, 1, 1), np.float32), ("dwconv", 1, 1)
        else:
            values[name] = np.zeros(g["shape"], np.float32)
            if owner:
                modules[owner] = ("module",)
    zeros = [{k: v for k, v in values.items()}] * max_iters
    ref_cfg, _ = reference_config(cfg)
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    with warnings.catch_warnings():  # MMEngine's and torch's advice to a real training run
        warnings.simplefilter("ignore")
        run = run_mmengine(ref_cfg, values, zeros, steps_per_epoch=steps, modules=modules,
                           dtype="float32", log_level="ERROR", **kwargs)
    out = {"lr": np.stack([run.lr[g["name"]] for g in groups], axis=1),
           "weight_decay": np.stack([run.weight_decay[g["name"]] for g in groups], axis=1)}
    if run.momentum is not None:
        out["momentum"] = np.stack([run.momentum[g["name"]] for g in groups], axis=1)
    return out


def title(args, cfg, run: Run) -> str:
    import os

    ow = cfg.get("optim_wrapper") or {}
    opt = ow.get("optimizer") or {}
    wrapper = str(ow.get("type", "OptimWrapper")).rpartition(".")[2]
    lines = [f"{os.path.basename(args.config)}: {wrapper}, {opt.get('type', '?')} "
             f"lr={opt.get('lr', '?')}"]
    text = (f"{run.max_iters // run.steps_per_epoch} epochs x {run.steps_per_epoch} iterations"
            if run.epoch_based else f"{run.max_iters} iterations")
    if not args.steps_per_epoch and run.epoch_based:
        text += " (compressed)"
    k = ow.get("accumulative_counts", 1)
    if isinstance(k, int) and k > 1:
        text += f"; accumulation: one update per {k} iterations"
    lines.append(text + "; reference: the real MMEngine Runner")
    return "\n".join(lines)
