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

import numpy as np

from ..errors import ConfigError
from ..options import ITERATION_LIMIT_TEXT, Options
from ..validation import (
    ITERATION_LIMIT,
    float32_problem,
    is_concrete_number,
    kind_of,
    not_a_number,
)

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
    if not_a_number(norm_type) or not norm_type > 0:  # a bool is not a number (True != 1)
        got = "" if is_concrete_number(norm_type) else f", got {kind_of(norm_type)}"
        opts.fail("norm_type", norm_type, f"must be a number > 0 or inf (or 'inf'){got}")
    opts.finish()
    return float(max_norm), float(norm_type)


def _frozen_layers(opts: Options) -> dict:
    """``frozen_layers_cfg``: name substring -> the iteration before which it is frozen
    (an int >= 0 that the int32 step counter holds; NumPy ints are ints)."""
    frozen = opts.get("frozen_layers_cfg", {}) or {}
    what = "must be a dict from name substring to an iteration count (int >= 0)"
    if not isinstance(frozen, dict):
        opts.fail("frozen_layers_cfg", frozen, what)
    out = {}
    for name, n in frozen.items():
        entry = f"{name!r}: {n!r}"
        if not isinstance(name, str):
            opts.fail("frozen_layers_cfg", frozen, f"{what}; the key {name!r} is not a string")
        why = not_a_number(n, integer=True)
        if why or n < 0:
            opts.fail("frozen_layers_cfg", frozen, f"{what}; {entry} " + (why or "is < 0"))
        if n > ITERATION_LIMIT:
            opts.fail("frozen_layers_cfg", frozen, f"{what}; {entry} {ITERATION_LIMIT_TEXT}")
        out[name] = int(n)
    return out


def _loss_scale(value, where):
    if isinstance(value, str) and value == "dynamic":
        return dict(_SCALER_KEYS)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not 0 < value < math.inf:
            raise ConfigError(f"{where}={value!r} must be a finite number > 0, 'dynamic' or "
                              "a dict")
        _fits_float32(where, value)
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
                                        integer=True, low=1, iterations=True))
        opts.finish()
        for key in ("init_scale", "growth_factor", "backoff_factor"):
            _fits_float32(f"{where}.{key}", out[key])
        return out
    raise ConfigError(f"{where}={value!r} must be 'dynamic', a number or a dict of "
                      f"GradScaler arguments ({', '.join(_SCALER_KEYS)})")


_FLOAT32_CONSEQUENCE = dict(
    init_scale="the scale is a float32 number: every scaled gradient would be inf or 0 and "
               "no update would ever be applied (torch's GradScaler fails at its first "
               "scale(): 'value cannot be converted to type float without overflow')",
    growth_factor="the scale is a float32 number and could never grow (torch leaves it "
                  "unchanged when growing would make it inf)",
    backoff_factor="the scale is a float32 number: the first skipped step would set it to 0 "
                   "and no update would be applied after that")


def _fits_float32(where, value) -> None:
    """A scale or factor without a positive finite float32 value, refused naming it."""
    why = float32_problem(value)
    if why:
        key = where.rsplit(".", 1)[-1]
        raise ConfigError(f"{where}={value!r} {why}; "
                          f"{_FLOAT32_CONSEQUENCE.get(key, _FLOAT32_CONSEQUENCE['init_scale'])}")


def parse_hooks(cfg: dict) -> HookSettings:
    opts = Options(cfg.get("optimizer_config") or {}, "optimizer_config")
    hook_type = opts.get("type", None)
    if hook_type is not None and hook_type not in HOOK_TYPES:
        opts.fail("type", hook_type, f"is not one of {', '.join(map(repr, HOOK_TYPES))}")
    key = "cumulative_iters" if hook_type == "GradientCumulativeOptimizerHook" else \
        "update_interval"
    if hook_type != "OptimizerHook":
        k = opts.number(key, 1, integer=True, low=1, iterations=True)
    else:
        k = 1
    grad_clip = _grad_clip(opts.get("grad_clip", None))
    frozen = _frozen_layers(opts)
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


def custom_hooks(cfg: dict) -> list:
    """``custom_hooks`` as MMSelfSup 0.x's train entry point takes it: unset or empty for
    none, else a list of dicts (it asserts both; a dict or a string would otherwise drop
    every hook, a SimSiamHook's fixed predictor lr included)."""
    hooks = cfg.get("custom_hooks")
    if not hooks:
        return []
    example = "e.g. custom_hooks = [dict(type='SimSiamHook', fix_pred_lr=True, lr=0.05)]"
    if not isinstance(hooks, list):
        raise ConfigError(f"custom_hooks must be a list of hook dicts (upstream asserts a "
                          f"list), got {type(hooks).__name__}: {hooks!r}; {example}")
    for i, hook in enumerate(hooks):
        if not isinstance(hook, dict) or "type" not in hook:
            got = f"{type(hook).__name__}: {hook!r}" if not isinstance(hook, dict) else \
                f"{hook!r} (no 'type')"
            raise ConfigError(f"custom_hooks[{i}] must be a dict with a 'type' (upstream "
                              f"refuses anything else), got {got}; {example}")
    return hooks


def parse_simsiam(cfg: dict) -> SimSiamSettings | None:
    """The SimSiamHook of ``custom_hooks`` when it fixes the predictor lr."""
    found = None
    for i, hook in enumerate(custom_hooks(cfg)):
        if hook.get("type") != "SimSiamHook":
            continue
        opts = Options(hook, f"custom_hooks[{i}]")
        opts.get("type")
        # upstream tests both by truth value: a string 'False' would act as True there
        fix = opts.flag("fix_pred_lr")
        lr = opts.number("lr", low=0)
        by_epoch = opts.get("adjust_by_epoch", True)  # upstream: None acts as False
        if by_epoch is not None and not isinstance(by_epoch, (bool, np.bool_)):
            opts.fail("adjust_by_epoch", by_epoch, "must be True, False or None")
        priority = opts.get("priority", "NORMAL")
        if priority in ("HIGHEST", "VERY_HIGH") or (isinstance(priority, int) and priority <= 10):
            opts.fail("priority", priority, "would run the SimSiamHook before the lr hook, "
                      "which then overrides the fixed lr; use 'HIGH' or lower")
        opts.finish()
        if found is not None:
            raise ConfigError("custom_hooks has more than one SimSiamHook")
        found = SimSiamSettings(float(lr), bool(by_epoch)) if fix else None
    return found
