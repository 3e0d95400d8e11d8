"""mmcv 1.x / MMSelfSup 0.x lr and momentum policies as closed-form jnp functions.

Each policy is a frozen object built from the policy's config keys and the run's
``PolicyContext``; calling it with an integer ``progress`` (the epoch when
``by_epoch`` else the iteration) and a base value (a scalar or an array of
per-parameter bases) gives the regular, un-warmed value. Warmup is not here: it
wraps any policy (``warmup.py``). The cyclic policies live in ``mmcv1_cyclic.py``.

Upstream names: ``<Policy>LrUpdaterHook`` / ``<Policy>MomentumUpdaterHook`` in
``mmcv.runner.hooks.{lr,momentum}_updater``; ``StepFixCosineAnnealingLrUpdaterHook``
in MMSelfSup.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from ..errors import ConfigError
from ..options import Options
from .anneal import const_pow, cos_anneal, float_dtype, lin_anneal, ratio


@dataclasses.dataclass(frozen=True)
class PolicyContext:
    """What a policy needs to know about the run when it is built."""

    kind: str  # 'lr' or 'momentum'
    by_epoch: bool
    max_progress: int  # max_epochs if by_epoch else max_iters
    max_iters: int
    warmup_progress: int  # warmup length in progress units (0 without warmup)


class Policy:
    """Base: ``__call__(progress, base)`` is the regular value."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]] = ("lr", "momentum")
    iteration_only: ClassVar[bool] = False  # by_epoch must be False (Cyclic, OneCycle)

    def __call__(self, progress, base):  # pragma: no cover - abstract
        raise NotImplementedError

    def base_value(self, base, group_index: int | None):
        """The group's base value for this policy (OneCycle replaces it)."""
        return base

    def per_group_options(self) -> dict:
        """The options given as one value per param group: ``{config key: tuple}``."""
        return {}


def _target(opts: Options, ctx: PolicyContext):
    """``min_<kind>`` xor ``min_<kind>_ratio`` -> (absolute target, ratio)."""
    key, rkey = f"min_{ctx.kind}", f"min_{ctx.kind}_ratio"
    absolute = opts.number(key, None, allow_none=True)
    rel = opts.number(rkey, None, allow_none=True)
    if (absolute is None) == (rel is None):
        raise ConfigError(
            f"{opts.where}: give exactly one of {key!r} and {rkey!r} "
            f"(got {key}={absolute!r}, {rkey}={rel!r})"
        )
    return absolute, rel


def _target_value(absolute, rel, base):
    return base * rel if rel is not None else jnp.asarray(absolute, float_dtype())


@dataclasses.dataclass(frozen=True)
class Fixed(Policy):
    name = "Fixed"
    kinds = ("lr",)

    @classmethod
    def from_config(cls, opts: Options, ctx: PolicyContext):
        return cls()

    def __call__(self, progress, base):
        return base + jnp.zeros(jnp.shape(progress), float_dtype())


@dataclasses.dataclass(frozen=True)
class Step(Policy):
    """``base * gamma**k`` (k = progress // step, or #milestones <= progress), then min clip."""

    name = "Step"
    step: int | tuple[int, ...]
    gamma: float
    minimum: float | None

    @classmethod
    def from_config(cls, opts: Options, ctx: PolicyContext):
        step = opts.get("step")
        if isinstance(step, (list, tuple)):
            if not step or not all(
                isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in step
            ) or any(b <= a for a, b in zip(step, step[1:])):
                opts.fail("step", step, "must be a positive int or a strictly increasing "
                          "list of positive ints")
            step = tuple(step)
        elif isinstance(step, bool) or not isinstance(step, int) or step <= 0:
            opts.fail("step", step, "must be a positive int or a strictly increasing list "
                      "of positive ints")
        gamma = opts.number("gamma", 0.1 if ctx.kind == "lr" else 0.5)
        minimum = opts.number(f"min_{ctx.kind}", None, allow_none=True)
        return cls(step, gamma, minimum)

    def __call__(self, progress, base):
        if isinstance(self.step, int):
            k = progress // self.step
        else:
            k = jnp.searchsorted(jnp.asarray(self.step), progress, side="right")
        value = base * const_pow(self.gamma, k)
        if self.minimum is not None:
            value = jnp.maximum(value, self.minimum)
        return value


@dataclasses.dataclass(frozen=True)
class Exp(Policy):
    """``base * gamma**progress``."""

    name = "Exp"
    kinds = ("lr",)
    gamma: float

    @classmethod
    def from_config(cls, opts, ctx):
        return cls(opts.number("gamma"))

    def __call__(self, progress, base):
        return base * const_pow(self.gamma, progress)


@dataclasses.dataclass(frozen=True)
class Poly(Policy):
    """``(base - min_lr) * (1 - progress/max_progress)**power + min_lr``."""

    name = "Poly"
    kinds = ("lr",)
    power: float
    min_lr: float
    max_progress: int

    @classmethod
    def from_config(cls, opts, ctx):
        return cls(opts.number("power", 1.0), opts.number("min_lr", 0.0), ctx.max_progress)

    def __call__(self, progress, base):
        coeff = jnp.power(ratio(self.max_progress - progress, self.max_progress), self.power)
        return (base - self.min_lr) * coeff + self.min_lr


@dataclasses.dataclass(frozen=True)
class Inv(Policy):
    """``base * (1 + gamma * progress)**(-power)``."""

    name = "Inv"
    kinds = ("lr",)
    gamma: float
    power: float

    @classmethod
    def from_config(cls, opts, ctx):
        return cls(opts.number("gamma"), opts.number("power", 1.0))

    def __call__(self, progress, base):
        return base * jnp.power(1.0 + self.gamma * progress.astype(float_dtype()), -self.power)


@dataclasses.dataclass(frozen=True)
class CosineAnnealing(Policy):
    """``cos_anneal(base, target, progress / max_progress)``."""

    name = "CosineAnnealing"
    min_abs: float | None
    min_ratio: float | None
    max_progress: int

    @classmethod
    def from_config(cls, opts, ctx):
        return cls(*_target(opts, ctx), ctx.max_progress)

    def __call__(self, progress, base):
        target = _target_value(self.min_abs, self.min_ratio, base)
        return cos_anneal(base, target, ratio(self.max_progress - progress, self.max_progress))


@dataclasses.dataclass(frozen=True)
class LinearAnnealing(CosineAnnealing):
    """``lin_anneal(base, target, progress / max_progress)``."""

    name = "LinearAnnealing"

    def __call__(self, progress, base):
        target = _target_value(self.min_abs, self.min_ratio, base)
        return lin_anneal(base, target, ratio(progress, self.max_progress),
                          ratio(self.max_progress - progress, self.max_progress))


@dataclasses.dataclass(frozen=True)
class StepFixCosineAnnealing(Policy):
    """MMSelfSup: CosineAnnealing with the warmup length ``shift`` removed from both
    progress and max_progress (``W // spe`` epochs when by_epoch, else ``W``
    iterations; 0 without warmup). During warmup the progress is negative and the
    formula is used as is. Its linear warmup is ``r * it / W`` (see warmup.py)."""

    name = "StepFixCosineAnnealing"
    kinds = ("lr",)
    min_abs: float | None
    min_ratio: float | None
    max_progress: int
    shift: int

    @classmethod
    def from_config(cls, opts, ctx):
        absolute, rel = _target(opts, ctx)
        if ctx.max_progress - ctx.warmup_progress <= 0:
            raise ConfigError(
                f"{opts.where}: StepFixCosineAnnealing needs a run longer than its warmup "
                f"(max progress {ctx.max_progress}, warmup {ctx.warmup_progress})"
            )
        return cls(absolute, rel, ctx.max_progress, ctx.warmup_progress)

    def __call__(self, progress, base):
        target = _target_value(self.min_abs, self.min_ratio, base)
        rest = ratio(self.max_progress - progress, self.max_progress - self.shift)
        return cos_anneal(base, target, rest)


@dataclasses.dataclass(frozen=True)
class FlatCosineAnnealing(Policy):
    """``base`` until ``start = round(max_progress * start_percent)``, then cosine to target."""

    name = "FlatCosineAnnealing"
    kinds = ("lr",)
    start: int
    min_abs: float | None
    min_ratio: float | None
    max_progress: int

    @classmethod
    def from_config(cls, opts, ctx):
        pct = opts.get("start_percent", 0.75)
        if not isinstance(pct, float) or not 0 <= pct <= 1:
            opts.fail("start_percent", pct, "must be a float in [0, 1]")
        absolute, rel = _target(opts, ctx)
        return cls(round(ctx.max_progress * pct), absolute, rel, ctx.max_progress)

    def __call__(self, progress, base):
        target = _target_value(self.min_abs, self.min_ratio, base)
        span = max(self.max_progress - self.start, 1)
        annealed = cos_anneal(base, target, ratio(self.max_progress - progress, span))
        return jnp.where(progress < self.start, base, annealed)


@dataclasses.dataclass(frozen=True)
class CosineRestart(Policy):
    """Cosine restarts: period ``i`` anneals from base to target weighted by ``w_i``."""

    name = "CosineRestart"
    kinds = ("lr",)
    periods: tuple[int, ...]
    weights: tuple[float, ...]
    min_abs: float | None
    min_ratio: float | None

    @classmethod
    def from_config(cls, opts, ctx):
        periods = opts.get("periods")
        if not isinstance(periods, (list, tuple)) or not periods or not all(
            isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in periods
        ):
            opts.fail("periods", periods, "must be a non-empty list of positive ints")
        weights = opts.get("restart_weights", [1])
        if not isinstance(weights, (list, tuple)) or len(weights) != len(periods):
            opts.fail("restart_weights", weights,
                      f"must be a list as long as periods ({len(periods)} entries)")
        if sum(periods) < ctx.max_progress:
            raise ConfigError(
                f"{opts.where}.periods={list(periods)} cover {sum(periods)} "
                f"{'epochs' if ctx.by_epoch else 'iterations'}, shorter than the run "
                f"({ctx.max_progress}); upstream fails past the last period"
            )
        return cls(tuple(periods), tuple(float(w) for w in weights), *_target(opts, ctx))

    def __call__(self, progress, base):
        target = _target_value(self.min_abs, self.min_ratio, base)
        ends = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        idx = jnp.searchsorted(jnp.asarray(ends), progress, side="right")
        idx = jnp.minimum(idx, len(ends) - 1)  # past the end is refused at build time
        starts = jnp.asarray([0] + ends[:-1])[idx]
        period = jnp.asarray(self.periods)[idx]
        weight = jnp.asarray(self.weights, float_dtype())[idx]
        rest = jnp.maximum(period - (progress - starts), 0).astype(float_dtype()) / period
        return cos_anneal(base, target, rest, weight)


CLOSED_FORM_POLICIES = (
    Fixed, Step, Exp, Poly, Inv, CosineAnnealing, LinearAnnealing, StepFixCosineAnnealing,
    FlatCosineAnnealing, CosineRestart,
)

