"""One ``param_scheduler`` entry -> a scheduler object, as MMEngine's Runner builds it.

The Runner (``Runner._build_param_scheduler``) gives a scheduler without ``end``
``max_epochs`` if its ``by_epoch`` (default True) else ``max_iters``, *before*
``convert_to_iter_based`` multiplies ``begin``/``end`` (``int()``-truncated),
``T_max``, ``step_size``, ``milestones``, ``total_steps`` and ``periods`` by the
data loader's length. Every value MMEngine would reject (or crash on during
the run) is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import math
import numbers
import warnings

from ..errors import ConfigError
from ..options import Options
from ..registry import PARAM_SCHEDULERS
from . import mmengine_schedulers as ms
from .mmengine_loop import INF, TrainLoop
from .mmengine_onecycle import OneCycle

PARAM_NAMES = ("lr", "momentum", "weight_decay")
REFUSED = "ReduceOnPlateau"


class SchedulerWarning(UserWarning):
    """A scheduler that upstream builds but that does not do what it seems to."""


_FAMILIES = {"Constant": ms.Constant, "CosineAnnealing": ms.Cosine,
             "Exponential": ms.Exponential, "Linear": ms.Linear, "MultiStep": ms.MultiStep,
             "Step": ms.Step, "Poly": ms.Poly, "OneCycle": OneCycle,
             "CosineRestart": ms.CosineRestart, REFUSED: None}
for _family in _FAMILIES:
    PARAM_SCHEDULERS.register(f"{_family}LR", (_family, "lr"))
    PARAM_SCHEDULERS.register(f"{_family}ParamScheduler", (_family, None))
    if _family != "OneCycle":
        PARAM_SCHEDULERS.register(f"{_family}Momentum", (_family, "momentum"))
PARAM_SCHEDULERS.register("CosineAnnealingWeightDecay", ("CosineWeightDecay", "weight_decay"))
MMPRETRAIN_ONLY = ("CosineAnnealingWeightDecay",)


def _integral(opts: Options, key: str, value, *, low=None):
    """An int, or a float with an integral value (what ``x * epoch_length`` gives)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value != int(value):
        opts.fail(key, value, "must be an integer")
    if low is not None and value < low:
        opts.fail(key, value, f"must be >= {low}")
    return int(value)


def _bool(opts: Options, key: str, default: bool) -> bool:
    value = opts.get(key, default)
    if not isinstance(value, bool):
        opts.fail(key, value, "must be True or False")
    return value


def _type_name(opts: Options, default_scope: str | None) -> tuple[str, str]:
    name = opts.get("type")
    if not isinstance(name, str):
        opts.fail("type", name, "must be a string")
    scope = default_scope
    if "." in name:
        scope, name = name.split(".", 1)
    if name in MMPRETRAIN_ONLY and scope is not None and scope != "mmpretrain":
        opts.fail("type", opts.cfg["type"], f"is registered only in the 'mmpretrain' scope "
                  f"(default_scope={default_scope!r}); write 'mmpretrain.{name}'")
    return name, scope


def parse_scheduler(cfg: dict, index: int, where: str, loop: TrainLoop, *,
                    default_scope: str | None = None) -> ms.Scheduler:
    opts = Options(cfg, where)
    name, _ = _type_name(opts, default_scope)
    family, param = PARAM_SCHEDULERS.get(name, f"{where}.type")
    if family == REFUSED:
        raise ConfigError(f"{where}.type={name!r} steps on a validation metric "
                          "(after_val_epoch), which a schedule of the iteration cannot know; "
                          "use a fixed schedule")
    by_epoch = _bool(opts, "by_epoch", True)
    convert = _bool(opts, "convert_to_iter_based", False)
    if convert and not by_epoch:
        opts.fail("convert_to_iter_based", True, "needs by_epoch=True (MMEngine asserts it)")
    if opts.get("last_step", -1) != -1:
        opts.fail("last_step", cfg["last_step"], "must be -1 (resuming by last_step is not "
                  "supported)")
    opts.get("verbose", False)
    if param is None:
        param = opts.choice("param_name", PARAM_NAMES)
    begin = opts.number("begin", 0, low=0)
    end = opts.number("end", loop.max_epochs if by_epoch else loop.max_iters, low_open=True,
                      low=0)
    L = loop.epoch_length(where) if convert else 1
    if convert:
        begin, end, by_epoch = int(begin * L), (end if end == INF else int(end * L)), False
    begin, end = _integral(opts, "begin", begin), _integral(opts, "end", end)
    if end <= begin:
        raise ConfigError(f"{where}: end={end} must be larger than begin={begin}"
                          f"{' (after convert_to_iter_based)' if convert else ''}; MMEngine "
                          "raises ValueError")
    timing = ms.Timing(index, where, name, param, by_epoch, begin, end)
    sched = _FAMILY_PARSERS[family](opts, timing, L, loop)
    opts.finish()
    if by_epoch and not loop.by_epoch:
        warnings.warn(
            f"{where} ({name}) has by_epoch=True under an IterBasedTrainLoop: MMEngine steps "
            f"it only when it is built (and once after the last iteration), so it changes "
            f"{param} only by its construction step; use by_epoch=False or "
            "convert_to_iter_based=True to schedule it", SchedulerWarning, stacklevel=3)
    return sched


def _gamma(opts, default=0.1):
    return opts.number("gamma", default, low=0)


def _step(opts, tm, L, loop):
    size = _integral(opts, "step_size", opts.number("step_size") * L, low=1)
    return ms.Step(tm, size, _gamma(opts))


def _multistep(opts, tm, L, loop):
    milestones = opts.get("milestones")
    if not isinstance(milestones, (list, tuple)):
        opts.fail("milestones", milestones, "must be a list of integers")
    scaled = tuple(sorted(_integral(opts, "milestones", m * L) for m in milestones))
    return ms.MultiStep(tm, scaled, _gamma(opts))


def _constant(opts, tm, L, loop):
    factor = opts.number("factor", 1.0 / 3, low=0, high=1)
    total = tm.end - tm.begin - 1
    if factor == 0 and total > 0:
        opts.fail("factor", factor, "must be > 0: MMEngine divides by it at its last step")
    return ms.Constant(tm, factor, total)


def _exponential(opts, tm, L, loop):
    return ms.Exponential(tm, opts.number("gamma", low=0))


def _eta(opts, *, neither_ok: bool):
    eta_min = opts.number("eta_min", None, allow_none=True)
    ratio = opts.number("eta_min_ratio", None, allow_none=True)
    both = eta_min is not None and ratio is not None
    neither = eta_min is None and ratio is None
    if both or (neither and not neither_ok):
        raise ConfigError(f"{opts.where}: give exactly one of 'eta_min' and 'eta_min_ratio' "
                          f"(got eta_min={eta_min!r}, eta_min_ratio={ratio!r})")
    if neither:
        eta_min = 0.0  # CosineAnnealing's backward-compatible default
    return eta_min, ratio


def _cosine(opts, tm, L, loop, cls=ms.Cosine):
    t_max = opts.number("T_max", None, allow_none=True, low=0)
    if t_max is not None:
        t_max = t_max * L
    t_max = _integral(opts, "T_max", t_max or (tm.end - tm.begin), low=1)
    eta_min, ratio = _eta(opts, neither_ok=True)
    return cls(tm, t_max, eta_min, ratio, tm.end - tm.begin - 1 > t_max)


def _cosine_wd(opts, tm, L, loop):
    return _cosine(opts, tm, L, loop, ms.CosineWeightDecay)


def _linear(opts, tm, L, loop):
    start = opts.number("start_factor", 1.0 / 3, low=0, high=1)
    end = opts.number("end_factor", 1.0, low=0, high=1)
    total = tm.end - tm.begin - 1
    if start == 0 and total > 0:
        opts.fail("start_factor", start, "must be > 0: MMEngine divides by zero at its second "
                  "step")
    return ms.Linear(tm, start, end, total)


def _poly(opts, tm, L, loop):
    return ms.Poly(tm, opts.number("eta_min", 0), opts.number("power", 1.0, low=0),
                   tm.end - tm.begin - 1)


def _restart(opts, tm, L, loop):
    periods = opts.get("periods")
    if not isinstance(periods, (list, tuple)) or not periods:
        opts.fail("periods", periods, "must be a non-empty list of positive integers")
    periods = tuple(_integral(opts, "periods", p * L, low=1) for p in periods)
    weights = opts.get("restart_weights", (1,))
    if not isinstance(weights, (list, tuple)) or len(weights) != len(periods) or not all(
            isinstance(w, numbers.Real) and not isinstance(w, bool) for w in weights):
        opts.fail("restart_weights", weights, f"must be a list of {len(periods)} numbers, one "
                  "per period")
    eta_min, ratio = _eta(opts, neither_ok=False)
    return ms.CosineRestart(tm, periods, tuple(float(w) for w in weights), eta_min, ratio)


def _last_call(tm, loop: TrainLoop) -> int:
    """The last step index upstream takes, counting the one after the last iteration/epoch."""
    if not tm.by_epoch:
        g = loop.max_iters
    else:
        g = loop.max_epochs if loop.by_epoch else 1
    return min(g, tm.end - 1) - tm.begin


def _onecycle(opts, tm, L, loop):
    if tm.param != "lr":
        raise ConfigError(f"{opts.where}: OneCycle schedules only 'lr' (MMEngine asserts it), "
                          f"got param_name={tm.param!r}")
    eta_max = opts.get("eta_max", 0)
    if isinstance(eta_max, (list, tuple)):
        if not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in eta_max):
            opts.fail("eta_max", eta_max, "must be a number or a list of numbers")
        eta_max = tuple(float(x) for x in eta_max)
    else:
        eta_max = float(opts.number("eta_max", 0))
    total = opts.get("total_steps", None)
    if total is not None:
        if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
            opts.fail("total_steps", total, "must be a positive int")
        total *= L
    total = total if total is not None else tm.end - tm.begin
    pct = opts.get("pct_start", 0.3)
    if not isinstance(pct, float) or not 0 <= pct <= 1:
        opts.fail("pct_start", pct, "must be a float in [0, 1] (MMEngine rejects an int)")
    strategy = opts.choice("anneal_strategy", ("cos", "linear"), "cos")
    div = opts.number("div_factor", 25.0)
    final = opts.number("final_div_factor", 1e4)
    for key, value in (("div_factor", div), ("final_div_factor", final)):
        if value == 0:
            opts.fail(key, value, "must not be 0 (MMEngine divides by it)")
    sched = OneCycle(tm, eta_max, total, pct, strategy, div, final,
                        _bool(opts, "three_phase", False))
    last = _last_call(tm, loop)
    if last > total:
        raise ConfigError(f"{opts.where}: total_steps={total} but the run steps it {last + 1} "
                          "times (MMEngine raises ValueError 'Tried to step ... times'); "
                          "raise total_steps or set end")
    phases = sched.phases()
    for i, (start, stop, _, _) in enumerate(phases):
        lo = 0 if i == 0 else max(0, math.floor(start) + 1)
        hi = last if i == len(phases) - 1 else min(last, math.floor(stop))
        if lo <= hi and stop == start:
            raise ConfigError(f"{opts.where}: phase {i} of OneCycle has zero length "
                              f"(pct_start={pct}, total_steps={total}); MMEngine divides by "
                              "zero")
    return sched


_FAMILY_PARSERS = {"Constant": _constant, "CosineAnnealing": _cosine,
                   "Exponential": _exponential, "Linear": _linear, "MultiStep": _multistep,
                   "Step": _step, "Poly": _poly, "OneCycle": _onecycle,
                   "CosineRestart": _restart, "CosineWeightDecay": _cosine_wd}


def scheduler_list(param_scheduler, where: str) -> list[tuple[dict, str]]:
    """``param_scheduler`` (a dict or a list of dicts) -> ``[(cfg, where)]``."""
    if isinstance(param_scheduler, dict):
        return [(param_scheduler, where)]
    if not isinstance(param_scheduler, (list, tuple)):
        raise ConfigError(f"{where} must be a dict or a list of dicts, got "
                          f"{type(param_scheduler).__name__}: {param_scheduler!r}")
    return [(cfg, f"{where}[{i}]") for i, cfg in enumerate(param_scheduler)]

