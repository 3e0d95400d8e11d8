"""``optimizer_config``, ``fp16`` and ``custom_hooks`` (SimSiamHook) -> plain settings (SPEC 5, 6).

Upstream: MMSelfSup 0.x ``DistOptimizerHook`` (update_interval, grad_clip,
frozen_layers_cfg), mmcv ``OptimizerHook`` / ``GradientCumulativeOptimizerHook``
(cumulative_iters), ``GradAccumFp16OptimizerHook`` (top-level ``fp16=dict(
loss_scale=...)``) and ``SimSiamHook`` (fixed predictor lr).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

from ..errors import ConfigError
from ..options import Options

HOOK_TYPES = ("OptimizerHook", "DistOptimizerHook", "GradientCumulativeOptimizerHook",
              "Fp16OptimizerHook", "GradAccumFp16OptimizerHook")
_FP16_TYPES = ("Fp16OptimizerHook", "GradAccumFp16OptimizerHook")
# accepted for config compatibility; they choose distributed / debugging behaviour only
_IGNORED = ("coalesce", "bucket_size_mb", "detect_anomalous_params", "distributed")
_SCALER_KEYS = dict(init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
                    growth_interval=2000)


@dataclasses.dataclass(frozen=True)
class HookSettings:
    update_interval: int = 1
    flush_remainder: bool = True  # False for the fp16 hook: always /k, no final flush
    grad_clip: tuple[float, float] | None = None  # (max_norm, norm_type)
    frozen_layers: dict = dataclasses.field(default_factory=dict)
    loss_scale: dict | None = None  # GradScaler arguments when fp16 is on


def _grad_clip(value):
    if value is None:
        return None
    opts = Options(value, "optimizer_config.grad_clip")
    max_norm = opts.number("max_norm", low=0, low_open=True)
    norm_type = opts.get("norm_type", 2)
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        norm_type = math.inf
    if not isinstance(norm_type, numbers.Real) or not norm_type > 0:
        opts.fail("norm_type", norm_type, "must be a number > 0 or inf")
    opts.finish()
    return float(max_norm), float(norm_type)


def _loss_scale(value, where):
    if isinstance(value, str) and value == "dynamic":
        return dict(_SCALER_KEYS)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not 0 < value < math.inf:
            raise ConfigError(f"{where}={value!r} must be a finite number > 0, 'dynamic' or "
                              "a dict")
        return dict(_SCALER_KEYS, init_scale=float(value), growth_factor=1.0, backoff_factor=1.0)
    if isinstance(value, dict):
        # torch GradScaler's checks: growth_factor > 1, backoff_factor < 1
        opts = Options(value, where)
        out = dict(
            init_scale=opts.number("init_scale", _SCALER_KEYS["init_scale"], low=0,
                                   low_open=True, high=math.inf, high_open=True),
            growth_factor=opts.number("growth_factor", _SCALER_KEYS["growth_factor"], low=1,
                                      low_open=True, high=math.inf, high_open=True),
            backoff_factor=opts.number("backoff_factor", _SCALER_KEYS["backoff_factor"], low=0,
                                       low_open=True, high=1, high_open=True),
            growth_interval=opts.number("growth_interval", _SCALER_KEYS["growth_interval"],
                                        integer=True, low=1))
        opts.finish()
        return out
    raise ConfigError(f"{where}={value!r} must be 'dynamic', a number or a dict of "
                      f"GradScaler arguments ({', '.join(_SCALER_KEYS)})")


def parse_hooks(cfg: dict) -> HookSettings:
    opts = Options(cfg.get("optimizer_config") or {}, "optimizer_config")
    hook_type = opts.get("type", None)
    if hook_type is not None and hook_type not in HOOK_TYPES:
        opts.fail("type", hook_type, f"is not one of {', '.join(map(repr, HOOK_TYPES))}")
    key = "cumulative_iters" if hook_type == "GradientCumulativeOptimizerHook" else \
        "update_interval"
    if hook_type != "OptimizerHook":
        k = opts.number(key, 1, integer=True, low=1)
    else:
        k = 1
    grad_clip = _grad_clip(opts.get("grad_clip", None))
    frozen = opts.get("frozen_layers_cfg", {}) or {}
    if not isinstance(frozen, dict) or not all(
            isinstance(s, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 0
            for s, n in frozen.items()):
        opts.fail("frozen_layers_cfg", frozen, "must be a dict from name substring to an "
                  "iteration count (int >= 0)")
    loss_scale = None
    if hook_type in _FP16_TYPES:
        loss_scale = _loss_scale(opts.get("loss_scale", 512.0), "optimizer_config.loss_scale")
    for name in _IGNORED:
        opts.get(name, None)
    opts.finish()
    fp16 = cfg.get("fp16")
    if fp16 is not None:
        if hook_type is not None:
            raise ConfigError(f"fp16 is set together with optimizer_config.type={hook_type!r}; "
                              "upstream builds GradAccumFp16OptimizerHook from fp16 and "
                              "optimizer_config, so leave the type out")
        fopts = Options(fp16, "fp16")
        loss_scale = _loss_scale(fopts.get("loss_scale", 512.0), "fp16.loss_scale")
        fopts.finish()
    return HookSettings(k, loss_scale is None, grad_clip, dict(frozen), loss_scale)


@dataclasses.dataclass(frozen=True)
class SimSiamSettings:
    lr: float
    adjust_by_epoch: bool


def custom_hooks(cfg: dict) -> list[dict]:
    """``custom_hooks`` as mmcv's ``register_custom_hooks`` reads it: a list of hook dicts, or
    one dict (a list of one). Anything else is refused: mmcv would register a non-dict item
    as a Hook object, which a config file cannot hold."""
    hooks = cfg.get("custom_hooks")
    if hooks is None:
        return []
    if isinstance(hooks, dict):
        return [hooks]
    if not isinstance(hooks, list | tuple):
        raise ConfigError(f"custom_hooks must be a list of hook dicts such as "
                          f"[dict(type='SimSiamHook', ...)], got {type(hooks).__name__}: "
                          f"{hooks!r}")
    for i, hook in enumerate(hooks):
        if not isinstance(hook, dict):
            raise ConfigError(f"custom_hooks[{i}]={hook!r} must be a dict such as "
                              "dict(type='SimSiamHook', ...)")
    return list(hooks)


def parse_simsiam(cfg: dict) -> SimSiamSettings | None:
    """The SimSiamHook of ``custom_hooks`` when it fixes the predictor lr."""
    found = None
    for i, hook in enumerate(custom_hooks(cfg)):
        if hook.get("type") != "SimSiamHook":
            continue
        opts = Options(hook, f"custom_hooks[{i}]")
        opts.get("type")
        fix = opts.get("fix_pred_lr")
        lr = opts.number("lr", low=0)
        by_epoch = opts.get("adjust_by_epoch", True)
        priority = opts.get("priority", "NORMAL")
        if priority in ("HIGHEST", "VERY_HIGH") or (isinstance(priority, int) and priority <= 10):
            opts.fail("priority", priority, "would run the SimSiamHook before the lr hook, "
                      "which then overrides the fixed lr; use 'HIGH' or lower")
        opts.finish()
        if found is not None:
            raise ConfigError("custom_hooks has more than one SimSiamHook")
        found = SimSiamSettings(float(lr), bool(by_epoch)) if fix else None
    return found
