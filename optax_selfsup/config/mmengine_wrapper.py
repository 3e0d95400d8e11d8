"""``optim_wrapper`` -> the optimizer rule and the wrapper's run-wide settings (MMEngine).

Upstream (MMEngine 0.10.7): ``build_optim_wrapper`` pops ``constructor`` and
``paramwise_cfg``; the constructor pops ``optimizer`` and builds
``OPTIM_WRAPPERS.build(rest, optimizer=...)`` with ``type`` defaulting to
``'OptimWrapper'``, so every other key is a keyword argument of the wrapper class:

- ``OptimWrapper(accumulative_counts=1, clip_grad=None)``: ``clip_grad`` pops
  ``type`` (default ``'norm'``): ``'norm'`` calls ``clip_grad_norm_(params, **rest)``
  (``max_norm``, ``norm_type=2``, ``error_if_nonfinite=False``, ``foreach``),
  ``'value'`` calls ``clip_grad_value_(params, **rest)`` (``clip_value``, ``foreach``);
- ``AmpOptimWrapper(loss_scale='dynamic', dtype=None, use_fsdp=False, ...)``:
  ``'dynamic'`` is ``GradScaler()``; a float ``f`` is ``GradScaler(init_scale=f)`` set
  back to ``f`` after every step (a static scale that still skips non-finite steps);
  a dict is ``GradScaler(**dict)``; anything else (an int too) is a TypeError;
- ``DeepSpeedOptimWrapper`` (DeepSpeed's engine does the step) is refused here.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping

from ..errors import ConfigError, choices
from ..options import Options
from ..transforms.grad_clip import KINDS, GradClip
from ..transforms.rule import IMPLEMENTATION_ARGS, Rule, check_arguments
from ..transforms.torch_optimizer import resolve_rule
from ..validation import check_rule_values

WRAPPERS = ("OptimWrapper", "AmpOptimWrapper")
REFUSED_WRAPPERS = {
    "DeepSpeedOptimWrapper": "DeepSpeed's engine runs the optimizer step (ZeRO partitioning, "
                             "its own loss scaling and clipping), which is not reproduced",
    "ApexOptimWrapper": "NVIDIA Apex's amp (opt levels, master weights) is not reproduced",
    "OptimWrapperDict": "several optimizers (one per model part) are not supported",
}
AMP_DTYPES = ("float16", "bfloat16", "float32", "float64")
SCALER_DEFAULTS = dict(init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
                       growth_interval=2000)
#: Optimizer types registered only in some scopes: type -> the scopes that have it.
SCOPED_OPTIMIZERS = {"LARS": ("mmpretrain", "mmselfsup"), "Lamb": ("mmpretrain",)}


@dataclasses.dataclass(frozen=True)
class WrapperSettings:
    rule: Rule
    optimizer: dict  # the optimizer's arguments (no ``type``), checked, lists as tuples
    clip: GradClip | None
    accumulative_counts: int
    loss_scale: dict | None  # dynamic_loss_scale arguments (AmpOptimWrapper)
    amp: bool


def _scoped(value, where: str, default_scope: str | None) -> tuple[str, str | None]:
    """``'mmpretrain.Lamb'`` -> ``('Lamb', 'mmpretrain')``; a bare name takes the scope."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}={value!r} must be a registered name (a string)")
    scope, _, name = value.rpartition(".")
    return name, scope or default_scope


def check_wrapper_type(optim_wrapper: Mapping) -> str:
    """``'OptimWrapper'`` or ``'AmpOptimWrapper'``; the others refused, naming them."""
    name, _ = _scoped(optim_wrapper.get("type", "OptimWrapper"), "optim_wrapper.type", None)
    if name in REFUSED_WRAPPERS:
        raise ConfigError(f"optim_wrapper.type={optim_wrapper['type']!r} is not supported: "
                          f"{REFUSED_WRAPPERS[name]}; use one of {choices(WRAPPERS)}")
    if name not in WRAPPERS:
        raise ConfigError(f"optim_wrapper.type={optim_wrapper.get('type')!r} is not one of "
                          f"{choices(WRAPPERS)}")
    return name


def optimizer_rule(optimizer: Mapping, default_scope: str | None) -> tuple[Rule, dict]:
    """The rule of ``optim_wrapper.optimizer`` and its arguments (no ``type``), checked
    against torch's (or MMPretrain's) signature and value ranges."""
    where = "optim_wrapper.optimizer"
    if not isinstance(optimizer, Mapping):
        raise ConfigError(f"{where} must be a dict (type, lr, ...), got {optimizer!r}")
    if "type" not in optimizer:
        raise ConfigError(f"{where}: the key 'type' is required (e.g. type='SGD')")
    name, scope = _scoped(optimizer["type"], f"{where}.type", default_scope)
    if name in SCOPED_OPTIMIZERS and scope not in SCOPED_OPTIMIZERS[name]:
        scopes = SCOPED_OPTIMIZERS[name]
        raise ConfigError(
            f"{where}.type={optimizer['type']!r}: {name} is registered only in the "
            f"{' and '.join(map(repr, scopes))} scope(s), but the config's scope is "
            f"{scope!r} (default_scope, 'mmengine' when unset): MMEngine cannot find it; set "
            f"default_scope={scopes[0]!r} or write type='{scopes[0]}.{name}'")
    rule = resolve_rule(name)
    args = {k: v for k, v in optimizer.items() if k != "type" and k not in IMPLEMENTATION_ARGS}
    for key, default in rule.defaults.items():
        if isinstance(default, tuple) and isinstance(args.get(key), list):
            args[key] = tuple(args[key])
    try:
        check_arguments(rule, args, prefix=f"{where}.")
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None
    check_rule_values(rule, args, f"{where}.")
    return rule, args


def parse_clip(clip_grad) -> GradClip | None:
    """``optim_wrapper.clip_grad`` as the wrapper reads it (None: no clipping)."""
    where = "optim_wrapper.clip_grad"
    if clip_grad is None:
        return None
    if not isinstance(clip_grad, Mapping) or not clip_grad:
        raise ConfigError(f"{where}={clip_grad!r} must be None or a non-empty dict (MMEngine "
                          "asserts it), e.g. dict(max_norm=5.0)")
    opts = Options(dict(clip_grad), where)
    kind = opts.choice("type", KINDS, "norm")
    if len(clip_grad) == 1 and "type" in clip_grad:
        raise ConfigError(f"{where}={clip_grad!r} has only 'type' (MMEngine asserts other "
                          "arguments: max_norm for 'norm', clip_value for 'value')")
    opts.get("foreach", None)  # an implementation choice, not the maths
    if kind == "value":
        value = opts.number("clip_value", low=0, low_open=True, finite=True)
        opts.finish()
        return GradClip("value", clip_value=float(value))
    max_norm = opts.number("max_norm", low=0, low_open=True)
    norm_type = opts.get("norm_type", 2.0)
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        norm_type = math.inf  # torch: float(norm_type)
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or \
            not norm_type > 0:
        opts.fail("norm_type", clip_grad["norm_type"], "must be a number > 0 or inf ('inf')")
    error = opts.flag("error_if_nonfinite", False)
    opts.finish()
    return GradClip("norm", float(max_norm), float(norm_type), error)


def parse_loss_scale(value) -> dict | None:
    """``AmpOptimWrapper.loss_scale`` -> ``dynamic_loss_scale`` arguments (None: a
    ``GradScaler(enabled=False)``, which scales nothing and skips nothing)."""
    where = "optim_wrapper.loss_scale"
    if isinstance(value, str) and value == "dynamic":
        return dict(SCALER_DEFAULTS)
    if isinstance(value, float):
        if not 0 < value < math.inf:
            raise ConfigError(f"{where}={value!r} must be a finite float > 0")
        return dict(SCALER_DEFAULTS, init_scale=float(value), growth_factor=1.0,
                    backoff_factor=1.0)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        raise ConfigError(f"{where}={value!r} is a {type(value).__name__}: MMEngine takes a "
                          f"float ({float(value)!r} for a static scale), 'dynamic' or a dict "
                          "of GradScaler arguments, and raises TypeError for anything else")
    if isinstance(value, Mapping):
        opts = Options(dict(value), where)
        if not opts.flag("enabled", True):
            for key in SCALER_DEFAULTS:
                opts.get(key, None)
            opts.finish()
            return None
        out = dict(
            init_scale=opts.number("init_scale", SCALER_DEFAULTS["init_scale"], low=0,
                                   low_open=True, finite=True),
            growth_factor=opts.number("growth_factor", SCALER_DEFAULTS["growth_factor"], low=1,
                                      low_open=True, finite=True),
            backoff_factor=opts.number("backoff_factor", SCALER_DEFAULTS["backoff_factor"],
                                       low=0, low_open=True, high=1, high_open=True),
            growth_interval=opts.number("growth_interval", SCALER_DEFAULTS["growth_interval"],
                                        integer=True, low=1, iterations=True))
        opts.finish()
        return {k: float(v) if k != "growth_interval" else int(v) for k, v in out.items()}
    raise ConfigError(f"{where}={value!r} must be 'dynamic', a float or a dict of GradScaler "
                      f"arguments ({', '.join(SCALER_DEFAULTS)}, enabled); MMEngine raises "
                      "TypeError")


def parse_wrapper(optim_wrapper, default_scope: str | None) -> WrapperSettings:
    """Every key of ``optim_wrapper`` checked; the constructor's keys (``paramwise_cfg``,
    ``constructor``) are read by ``paramwise.optim_wrapper_groups``."""
    if not isinstance(optim_wrapper, Mapping):
        raise ConfigError(f"optim_wrapper must be a dict, got {type(optim_wrapper).__name__}: "
                          f"{optim_wrapper!r}")
    if optim_wrapper.get("optimizer") is None and "constructor" not in optim_wrapper:
        parts = [k for k, v in optim_wrapper.items() if isinstance(v, Mapping)]
        if parts and len(parts) == len(optim_wrapper):
            raise ConfigError(f"optim_wrapper holds one wrapper per model part ({choices(parts)}"
                              "): several optimizers (OptimWrapperDict) are not supported")
        raise ConfigError("optim_wrapper has no 'optimizer' (e.g. optim_wrapper = dict("
                          "optimizer=dict(type='SGD', lr=0.1, momentum=0.9)))")
    kind = check_wrapper_type(optim_wrapper)
    opts = Options(dict(optim_wrapper), "optim_wrapper")
    for key in ("type", "paramwise_cfg", "constructor"):
        opts.get(key, None)
    rule, args = optimizer_rule(opts.get("optimizer"), default_scope)
    clip = parse_clip(opts.get("clip_grad", None))
    counts = opts.number("accumulative_counts", 1, integer=True, low=1, iterations=True)
    loss_scale = None
    if kind == "AmpOptimWrapper":
        loss_scale = parse_loss_scale(opts.get("loss_scale", "dynamic"))
        dtype = opts.get("dtype", None)
        if dtype is not None and dtype not in AMP_DTYPES:
            opts.fail("dtype", dtype, f"is not one of {choices(AMP_DTYPES)} or None")
        if not isinstance(opts.get("use_fsdp", False), bool):
            opts.fail("use_fsdp", optim_wrapper["use_fsdp"], "must be True or False")
        if clip is not None and clip.error_if_nonfinite and loss_scale is not None:
            raise ConfigError(
                "optim_wrapper.clip_grad.error_if_nonfinite=True with AmpOptimWrapper: upstream "
                "clips the unscaled gradients before GradScaler skips an overflowing step, so "
                "every overflow raises; here an overflowing step is skipped before the clip. "
                "Not supported: set error_if_nonfinite=False")
    elif any(k in optim_wrapper for k in ("loss_scale", "dtype", "use_fsdp")):
        amp_keys = [k for k in ("loss_scale", "dtype", "use_fsdp") if k in optim_wrapper]
        raise ConfigError(f"optim_wrapper: {choices(amp_keys)} are AmpOptimWrapper arguments, "
                          f"but optim_wrapper.type is {optim_wrapper.get('type', 'OptimWrapper')!r}"
                          " (MMEngine raises TypeError); set type='AmpOptimWrapper'")
    opts.finish()
    return WrapperSettings(rule, args, clip, counts, loss_scale, kind == "AmpOptimWrapper")
