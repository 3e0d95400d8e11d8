"""MMEngine configs: the hooks and Runner settings that act on the optimisation.

- ``custom_hooks``: MMPretrain / MMSelfSup 1.x ``SimSiamHook`` (writes the lr of the
  ``fix_lr`` groups: a hook write inside the lr schedule) and ``SwAVHook``'s
  ``frozen_layers_cfg`` (``requires_grad=False`` before an iteration: no gradient, so
  no update, for the parameters whose name contains the key). The hooks in
  ``ACCEPTED`` do not touch the optimizer (they are the training loop's business);
  hooks that only exist in mmcv 1.x, or a second ``ParamSchedulerHook``, are refused;
  any other hook is warned about, naming it.
- ``default_hooks.param_scheduler``: must stay MMEngine's ``ParamSchedulerHook`` (None
  removes it, and then no scheduler ever steps).
- ``auto_scale_lr``: with ``enable=True`` the Runner multiplies every group's lr by
  ``total batch size / base_batch_size`` before the schedulers are built; the total
  batch size (processes x per-process batch) is not in the config, so it is asked for.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

from ..errors import ConfigError, choices
from ..options import REQUIRED, Options
from .mmcv1_hooks import HOOK_TYPES as MMCV1_OPTIMIZER_HOOKS
from .mmcv1_hooks import _frozen_layers

#: Hooks that do not change the optimizer's updates: accepted, and left to the training loop.
ACCEPTED = {
    # MMEngine
    "CheckpointHook": "saves checkpoints", "EarlyStoppingHook": "stops on a validation metric",
    "EMAHook": "keeps an exponential moving average of the weights (a copy of the model)",
    "EmptyCacheHook": "frees CUDA memory", "IterTimerHook": "times iterations",
    "LoggerHook": "logs", "NaiveVisualizationHook": "visualises",
    "NPUProfilerHook": "profiles", "PrepareTTAHook": "test-time augmentation",
    "ProfilerHook": "profiles", "RuntimeInfoHook": "records runtime information",
    "DistSamplerSeedHook": "seeds the data sampler",
    "SyncBuffersHook": "synchronises BatchNorm buffers across processes",
    # MMPretrain 1.x
    "ClassNumCheckHook": "checks the number of classes",
    "DenseCLHook": "sets the model's loss weight after start_iters",
    "PreciseBNHook": "recomputes BatchNorm statistics",
    "PrepareProtoBeforeValLoopHook": "prepares retrieval prototypes",
    "SetAdaptiveMarginsHook": "sets a margin head's margins",
    "SwitchRecipeHook": "switches the data pipeline / batch augments / loss",
    "VisualizationHook": "visualises",
    "WarmupParamHook": "warms up a model attribute (not an optimizer setting)",
    # MMSelfSup 1.x
    "DeepClusterHook": "clusters features and re-initialises the head (model weights)",
    "ODCHook": "updates the online clustering memory",
    "SelfSupVisualizationHook": "visualises",
}
SWAV_KEYS = ("batch_size", "epoch_queue_starts", "crops_for_assign", "feat_dim",
             "queue_length", "interval", "frozen_layers_cfg", "priority")


class HookWarning(UserWarning):
    """A hook this port does not know: it may change the optimisation."""


@dataclasses.dataclass(frozen=True)
class MMEngineHooks:
    simsiam: dict | None  # the SimSiamHook's config (its HookWrite needs the groups)
    frozen_layers: dict  # SwAVHook frozen_layers_cfg: name substring -> iterations


def _type_name(hook: Mapping, where: str) -> str:
    kind = hook.get("type")
    if not isinstance(kind, str):
        raise ConfigError(f"{where}.type={kind!r} must be a hook name (a string)")
    return kind.rpartition(".")[2]


def _swav(hook: dict, where: str, accumulative_counts: int) -> dict:
    opts = Options(hook, where)
    opts.get("type")
    for key in SWAV_KEYS:
        opts.get(key, REQUIRED if key == "batch_size" else None)
    frozen = _frozen_layers(opts)
    opts.finish()
    if len(frozen) > 1:
        raise ConfigError(
            f"{where}.frozen_layers_cfg={hook['frozen_layers_cfg']!r} has more than one entry: "
            "SwAVHook keeps ONE requires_grad flag for all of them, so upstream freezes only the "
            "first key at first and never unfreezes some of the others; not supported (use one "
            "entry)")
    k = accumulative_counts
    bad = {name: n for name, n in frozen.items() if k > 1 and n % k}
    if bad:
        raise ConfigError(
            f"{where}.frozen_layers_cfg={hook['frozen_layers_cfg']!r} ends the freeze inside an "
            f"accumulation window (optim_wrapper.accumulative_counts={k}): upstream would "
            "accumulate the frozen layers' gradients of the window's last micro-batches only; "
            f"use an iteration count that is a multiple of {k}")
    return frozen


def parse_custom_hooks(cfg: Mapping, accumulative_counts: int = 1) -> MMEngineHooks:
    """``custom_hooks`` (a list of dicts, or unset) of an MMEngine config."""
    hooks = cfg.get("custom_hooks") or []
    if not isinstance(hooks, (list, tuple)):
        raise ConfigError(f"custom_hooks must be a list of hook dicts, got "
                          f"{type(hooks).__name__}: {hooks!r}")
    simsiam, frozen = None, {}
    for i, hook in enumerate(hooks):
        where = f"custom_hooks[{i}]"
        if not isinstance(hook, Mapping) or "type" not in hook:
            raise ConfigError(f"{where} must be a dict with a 'type', got {hook!r}")
        name = _type_name(hook, where)
        if name == "SimSiamHook":
            if simsiam is not None:
                raise ConfigError(f"{where}: a second SimSiamHook; give one")
            simsiam = dict(hook)
        elif name == "SwAVHook":
            frozen.update(_swav(dict(hook), f"{where} (SwAVHook)", accumulative_counts))
        elif name == "ParamSchedulerHook":
            raise ConfigError(f"{where}: ParamSchedulerHook is already one of MMEngine's "
                              "default hooks; a second one would step every scheduler twice")
        elif name in MMCV1_OPTIMIZER_HOOKS or name.endswith(("LrUpdaterHook",
                                                             "MomentumUpdaterHook")):
            raise ConfigError(f"{where}: {name!r} is an mmcv 1.x hook that MMEngine does not "
                              "have; in an MMEngine config optim_wrapper (clip_grad, "
                              "accumulative_counts, AmpOptimWrapper) and param_scheduler do "
                              "its work")
        elif name not in ACCEPTED:
            warnings.warn(
                f"{where}: {name!r} is not a hook this port knows. Hooks that only act on the "
                "model, data or logging are the training loop's business; if this one changes "
                "the optimizer's param groups, gradients or steps, the JAX run will NOT follow "
                f"it. Known hooks: SimSiamHook, SwAVHook, {choices(ACCEPTED)}", HookWarning,
                stacklevel=4)
    return MMEngineHooks(simsiam, frozen)


def check_default_hooks(cfg: Mapping) -> None:
    """``default_hooks.param_scheduler`` must keep stepping the schedulers."""
    hooks = cfg.get("default_hooks")
    if hooks is None:
        return
    if not isinstance(hooks, Mapping):
        raise ConfigError(f"default_hooks must be a dict, got {type(hooks).__name__}")
    if "param_scheduler" not in hooks:
        return
    hook = hooks["param_scheduler"]
    where = "default_hooks.param_scheduler"
    if hook is None:
        raise ConfigError(f"{where}=None removes MMEngine's ParamSchedulerHook, so no "
                          "param_scheduler would ever step; not supported (remove the entry "
                          "and the param_scheduler instead if the values are to stay fixed)")
    if not isinstance(hook, Mapping) or _type_name(hook, where) != "ParamSchedulerHook":
        raise ConfigError(f"{where}={hook!r}: only MMEngine's ParamSchedulerHook is supported")
    opts = Options(dict(hook), where)
    opts.get("type")
    opts.get("priority", None)
    opts.finish()


def auto_scale_ratio(cfg: Mapping, batch_size) -> float | None:
    """``auto_scale_lr``: the lr factor, or None when it is off (unset, or no enable=True)."""
    value = cfg.get("auto_scale_lr")
    if value is None:
        return None
    opts = Options(value, "auto_scale_lr")
    enable = opts.flag("enable", False)
    base = opts.number("base_batch_size", None, low=0, low_open=True, allow_none=True)
    opts.finish()
    if not enable:
        return None
    if base is None:
        raise ConfigError("auto_scale_lr.enable=True needs base_batch_size (MMEngine asserts "
                          "it)")
    if batch_size is None:
        raise ConfigError(
            "auto_scale_lr.enable=True: the Runner multiplies every lr by the total batch size "
            f"(processes x train_dataloader.batch_size) / base_batch_size ({base}); give the "
            "total batch size as build_optimizer(..., batch_size=N), or set enable=False")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size={batch_size!r} must be a positive int (the total batch "
                          "size of one iteration)")
    return float(batch_size) / float(base)
