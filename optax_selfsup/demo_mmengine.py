"""The parity run of an MMEngine config: optax_selfsup against the real MMEngine ``Runner``.

``run_parity_mmengine(cfg)`` trains ``demo_tree.DEMO_MODEL`` with ``oss.build_optimizer`` and with
MMEngine 0.10.7's own ``Runner`` (``torch_ref.mmengine``: the real optim wrappers,
constructors, schedulers and hooks, MMPretrain 1.2.0's LARS / Lamb / layer-decay constructor /
weight-decay scheduler / SimSiamHook; ``pip install 'optax_selfsup[mmengine-ref]'``) on the
same random gradients, and returns a ``demo_tree.ParityReport``. On the torch side the demo tree's
tensors live in real module types (``DEMO_MODULES``: ``BatchNorm2d``, ``LayerNorm``,
``Linear``, ``Conv2d``), because MMEngine finds norm layers by type; optax_selfsup finds them
from the names and shapes, as it does for a user's tree without ``module=``.

Compared at EVERY iteration: the parameters after it, the lr / momentum (``betas[0]``) /
weight decay each parameter's group used, and whether the optimizer stepped. AMP configs
scale the gradient by ``oss.loss_scale`` on our side, as a training step scales the loss; the
reference's ``AmpOptimWrapper`` scales the loss itself.
"""

from __future__ import annotations

import warnings

import numpy as np

# The torch module that owns each tensor of demo_tree.DEMO_MODEL (module specs of
# torch_ref.mmengine's model builder); 4-d weights are Conv2d, the backbone's own tokens sit
# in a plain module.
DEMO_MODULES = {
    "backbone.bn1": ("bn", 8),
    "backbone.layer1.0.bn1": ("bn", 8),
    "backbone.layer1.0.downsample.1": ("bn", 8),
    "backbone.layers.0.ln1": ("ln", 6),
    "backbone.layers.0.attn.qkv": ("linear", 18, 6),
    "backbone.layers.1.ln1": ("ln", 6),
    "backbone.layers.1.attn.qkv": ("linear", 18, 6),
    "backbone.ln1": ("ln", 6),
    "neck.mlp.0": ("linear", 16, 8),
    "neck.mlp.2": ("linear", 4, 16),
    "neck.zero_init": ("linear", 4, 4),
    "head.predictor.0": ("linear", 4, 4),
    "prototypes": ("linear", 10, 4),
}
#: custom_hooks the reference runs; the optimizer-neutral ones (and hooks this port warns
#: about) act on things the demo tree does not have, so the reference leaves them out
REFERENCE_HOOKS = ("SimSiamHook", "SwAVHook")
MMENGINE_VERSION, MMPRETRAIN_VERSION = "0.10.7", "1.2.0"


def train_loop_length(cfg: dict) -> tuple[bool, int | None, int | None]:
    """``(by_epoch, max_epochs, max_iters)`` of ``train_cfg`` (checked by the builder)."""
    from .schedules.mmengine_loop import TrainLoop

    loop = TrainLoop.from_train_cfg(cfg.get("train_cfg") or {}, 1)
    return loop.by_epoch, (loop.max_epochs if loop.by_epoch else None), \
        (None if loop.by_epoch else loop.max_iters)


def warmup_end(cfg: dict, steps_per_epoch: int) -> int | None:
    """The iteration where the first lr scheduler (a ``LinearLR`` / ``ConstantLR`` from 0,
    followed by another lr scheduler) ends: the warmup of every shipped recipe."""
    schedulers = cfg.get("param_scheduler") or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    lr = [s for s in schedulers if isinstance(s, dict) and (
        str(s.get("type", "")).endswith("LR") or s.get("param_name") == "lr")]
    if len(lr) < 2 or str(lr[0].get("type")).rpartition(".")[2] not in ("LinearLR",
                                                                        "ConstantLR"):
        return None
    first = lr[0]
    if first.get("begin", 0) != 0 or not isinstance(first.get("end"), int):
        return None
    return first["end"] * steps_per_epoch if first.get("by_epoch", True) else first["end"]


def reference_config(cfg: dict) -> tuple[dict, list[str]]:
    """The config the reference Runner gets: the hooks it can run (SwAV's with only its
    freezing, which is upstream's own code), the others dropped with a note each."""
    import copy

    cfg = copy.deepcopy(cfg)
    kept, notes = [], []
    for hook in cfg.get("custom_hooks") or []:
        kind = str(hook.get("type", "")).rpartition(".")[2]
        if kind == "SwAVHook":
            from torch_ref.mmengine.upstream import swav_freeze_only_hook

            hook = dict(hook, type=swav_freeze_only_hook())
        elif kind not in REFERENCE_HOOKS:
            notes.append(f"custom_hooks {kind}: not run on the reference (it acts on a model "
                         f"part the demo tree does not have, not on the optimizer)")
            continue
        kept.append(hook)
    cfg["custom_hooks"] = kept
    return cfg, notes


def run_parity_mmengine(cfg: dict, steps_per_epoch: int | None, iters: int | None,
                        seed: int, batch_size: int | None):
    from . import ConfigError
    from .demo_tree import (
        COMPRESSED_ITERS,
        DEFAULT_MAX_ITERS,
        DEMO_MODEL,
        ParityReport,
        _relative,
        draw,
    )

    by_epoch, max_epochs, max_iters = train_loop_length(cfg)
    compressed = steps_per_epoch is None
    if by_epoch:
        if compressed:
            steps_per_epoch = max(2, COMPRESSED_ITERS // max_epochs)
        max_iters = max_epochs * steps_per_epoch
    elif compressed:  # an iteration loop: the data loader's length only matters to
        steps_per_epoch = max_iters  # by-epoch schedulers; one "epoch" is then the whole run
    if iters is None:
        iters = min(max_iters, DEFAULT_MAX_ITERS)
    if not 0 < iters <= max_iters:
        raise ConfigError(f"iters={iters} must be in [1, {max_iters}] (the run's length)")
    if (cfg.get("auto_scale_lr") or {}).get("enable") and batch_size is None:
        raise ConfigError("auto_scale_lr.enable=True scales the lr by the total batch size: "
                          "give it (--batch-size B), or --cfg-options auto_scale_lr.enable=False")

    values, grads = draw(seed, iters)
    order = _jax_order(list(DEMO_MODEL))
    values = {k: values[k] for k in order}  # torch registration order = the JAX leaf order
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    ours = _run_optax(cfg, steps_per_epoch, values, grads, order, kwargs)
    ref_cfg, notes = reference_config(cfg)
    ref = _run_reference(ref_cfg, steps_per_epoch, values, grads, iters, kwargs)

    param = _param_dev(ours, ref)
    dev = {}
    for key in ("lr", "momentum", "weight_decay"):
        if ref[key] is None or ours[key] is None:
            dev[key] = None if ref[key] is None and ours[key] is None else float("inf")
            continue
        dev[key] = _relative(ours[key], ref[key])
    return ParityReport(
        param=param, lr=dev["lr"], momentum=dev["momentum"], iters=iters, max_iters=max_iters,
        steps_per_epoch=steps_per_epoch if by_epoch else None,
        compressed=compressed and by_epoch, warmup_end=warmup_end(cfg, steps_per_epoch),
        updates=[int(i) for i in np.flatnonzero(ours["updated"])],
        ref_updates=[int(i) for i in np.flatnonzero(ref["stepped"])],
        weight_decay=dev["weight_decay"], generation="mmengine",
        reference=f"MMEngine {MMENGINE_VERSION} Runner (MMPretrain {MMPRETRAIN_VERSION})",
        notes=notes)


def _param_dev(ours, ref) -> float:
    """max over iterations t and elements of |ours_t - ref_t| / max(1, max_{s<=t} |ref_s|).

    The scale is the element's largest magnitude SO FAR, not its current one: float32
    rounds each update at the magnitude the parameter had then, and an element that walked
    out to |p| = 100 and back towards 0 carries the absolute rounding of those steps (the
    demo's random gradients walk LARS-excluded parameters that far at lr 4.8)."""
    a, b = ours["params"], ref["params"]
    scale = np.maximum(1.0, np.maximum.accumulate(np.abs(b), axis=0))
    return float(np.max(np.abs(a - b) / scale, initial=0.0))


def _jax_order(names: list[str]) -> list[str]:
    import jax

    from .names import nest_names

    tree = nest_names(dict.fromkeys(names, 0))
    return [".".join(str(k.key) for k in path)
            for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _run_optax(cfg, steps_per_epoch, values, grads, order, kwargs) -> dict:
    """The run in one compiled ``lax.scan``: per iteration the flat parameters, the lr /
    momentum / weight decay in force and whether an update was applied."""
    import jax
    import jax.numpy as jnp
    import optax

    from . import build_optimizer, current_hparams, has_updated, loss_scale, plan_optimizer
    from .names import nest_names

    params = nest_names({k: jnp.asarray(values[k]) for k in order})
    stacked = nest_names({k: jnp.asarray(grads[k]) for k in order})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rules for tensors the demo tree lacks, weak guesses
        tx = build_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, **kwargs)
        plan = plan_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, **kwargs)
    state = tx.init(params)
    first = current_hparams(state)
    amp = "loss_scale" in first
    scheduled_wd = "weight_decay" in first
    flat = lambda tree: jnp.concatenate([x.reshape(-1) for x in jax.tree.leaves(tree)])

    def step(carry, g):
        p, s = carry
        if amp:  # the gradient of the scaled loss
            g = jax.tree.map(lambda x: x * loss_scale(s).astype(x.dtype), g)
        updates, s = tx.update(g, s, p)
        p = optax.apply_updates(p, updates)
        h = current_hparams(s)
        out = {"params": flat(p), "lr": jnp.stack(jax.tree.leaves(h["lr"])),
               "updated": has_updated(s)}
        if h["momentum"] is not None:
            out["momentum"] = jnp.stack(jax.tree.leaves(h["momentum"]))
        if scheduled_wd:
            out["weight_decay"] = jnp.stack(jax.tree.leaves(h["weight_decay"]))
        return (p, s), out

    _, out = jax.jit(lambda p, s, g: jax.lax.scan(step, (p, s), g))(params, state, stacked)
    out = {k: np.asarray(v) for k, v in out.items()}
    if not scheduled_wd:  # nothing schedules it: each group's base value holds
        base = [h.get("weight_decay", 0.0) for h in plan.hparams]  # plan order = leaf order
        out["weight_decay"] = np.tile(np.asarray(base, np.float64), (len(out["lr"]), 1))
    out.setdefault("momentum", None)
    return out


def _run_reference(cfg, steps_per_epoch, values, grads, iters, kwargs) -> dict:
    from torch_ref.mmengine import run_mmengine

    from .demo_tree import DEMO_MODEL

    names = list(values)
    steps = [{k: grads[k][t] for k in DEMO_MODEL} for t in range(iters)]
    with warnings.catch_warnings():  # MMEngine's and torch's advice to a real training run
        warnings.simplefilter("ignore")
        run = run_mmengine(cfg, values, steps, steps_per_epoch=steps_per_epoch,
                           modules=DEMO_MODULES, dtype="float32", log_level="ERROR", **kwargs)
    params = np.stack([np.concatenate([run.params[t][n].reshape(-1) for n in names])
                       for t in range(iters)])

    def per_name(series):
        return None if series is None else np.stack([series[n] for n in names], axis=1)

    return {"params": params, "lr": per_name(run.lr), "momentum": per_name(run.momentum),
            "weight_decay": per_name(run.weight_decay), "stepped": np.asarray(run.stepped)}
