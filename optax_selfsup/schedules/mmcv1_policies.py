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
import math
from typing import ClassVar

import jax.numpy as jnp

from ..errors import ConfigError
from ..options import Options
from ..validation import ITERATION_LIMIT, MAX_FACTOR
from .anneal import const_pow, cos_anneal, float_dtype, lin_anneal, ratio
from .bounds import (
    FACTOR_TEXT,
    affine_text,
    check_gamma,
    check_restart_weights,
    check_target,
    first_true,
    inv_base_positive,
    negative_text,
)


@dataclasses.dataclass(frozen=True)
class PolicyContext:
    """What a policy needs to know about the run when it is built."""

    kind: str  # 'lr' or 'momentum'
    by_epoch: bool
    max_progress: int  # max_epochs if by_epoch else max_iters
    max_iters: int
    warmup_progress: int  # warmup length in progress units (0 without warmup)
    steps_per_epoch: int | None = None

    @property
    def last(self) -> int:
        """The run's last progress value (that of iteration ``max_iters - 1``)."""
        return self.max_progress - 1

    def at(self, progress: int) -> str:
        """Where ``progress`` starts, for a message: 'iteration 20 (epoch 2)'."""
        if self.by_epoch:
            return f"iteration {progress * self.steps_per_epoch} (epoch {progress})"
        return f"iteration {progress}"


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


def _target(opts: Options, ctx: PolicyContext, rest_end: float, strategy: str = "cos"):
    """``min_<kind>`` xor ``min_<kind>_ratio`` -> (absolute target, ratio), both >= 0
    (``rest_end``: 1 - the fraction annealed at the run's last progress)."""
    key, rkey = f"min_{ctx.kind}", f"min_{ctx.kind}_ratio"
    absolute = opts.number(key, None, allow_none=True, finite=True)
    rel = opts.number(rkey, None, allow_none=True, finite=True, high=MAX_FACTOR)
    if (absolute is None) == (rel is None):
        raise ConfigError(
            f"{opts.where}: give exactly one of {key!r} and {rkey!r} "
            f"(got {key}={absolute!r}, {rkey}={rel!r})"
        )
    check_target(opts, ctx, key, absolute, rest_end, strategy)
    check_target(opts, ctx, rkey, rel, rest_end, strategy)
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
        what = "must be a positive int or a strictly increasing list of positive ints"
        checks = dict(integer=True, low=0, low_open=True, iterations=True, hint=f"step {what}")
        if isinstance(step, (list, tuple)):
            if not step:
                opts.fail("step", step, what)
            step = tuple(opts.numbers("step", step, **checks))
            if any(b <= a for a, b in zip(step, step[1:])):
                opts.fail("step", list(step), what)
            first, k_max = step[0], sum(s <= ctx.last for s in step)
            progress_of_k = lambda k: step[k - 1]  # noqa: E731
        else:
            step = opts.check_number("step", step, step, **checks)
            first, k_max = step, ctx.last // step
            progress_of_k = lambda k: k * step  # noqa: E731
        gamma = opts.number("gamma", 0.1 if ctx.kind == "lr" else 0.5, finite=True)
        check_gamma(opts, ctx, gamma, first, k_max, progress_of_k)
        minimum = opts.number(f"min_{ctx.kind}", None, allow_none=True, finite=True)
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
        gamma = opts.number("gamma", finite=True)
        check_gamma(opts, ctx, gamma, 1, ctx.last, lambda k: k)
        return cls(gamma)

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
        power = opts.number("power", 1.0, finite=True)
        min_lr = opts.number("min_lr", 0.0, finite=True)
        n, last = ctx.max_progress, ctx.last
        if last >= 1 and power < 0:  # the factor grows to n**-power at the run's last
            grows = lambda p: -power * math.log(n / (n - p)) > math.log(MAX_FACTOR)  # noqa: E731
            p = first_true(grows, 1, last)
            if p is not None:
                opts.fail("power", power, f"makes the lr factor (1 - progress/{n})**power pass "
                          f"{FACTOR_TEXT} at {ctx.at(p)}")
        # lr = c*base + min_lr*(1 - c) with c = (1/n)**power at the run's last
        c = (1.0 / n) ** power if last >= 1 else 1.0
        b = min_lr * (1.0 - c)
        if b < 0:
            end = (f"is {affine_text(c, b)} at {ctx.at(last)}, the run's last, "
                   f"{negative_text(c, b, 'lr')}")
            if min_lr < 0:
                opts.fail("min_lr", min_lr, f"must be >= 0 (with power > 0): the lr falls "
                          f"toward min_lr and {end}")
            opts.fail("power", power, f"with min_lr={min_lr!r}: the lr (base - min_lr)*(1 - "
                      f"progress/{n})**power + min_lr grows past base and {end}; use "
                      "power >= 0 or min_lr=0")
        return cls(power, min_lr, ctx.max_progress)

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
        gamma = opts.number("gamma", finite=True)
        power = opts.number("power", 1.0, finite=True)
        if power != 0 and gamma < 0:
            p = first_true(lambda q: not inv_base_positive(gamma, q), 1, ctx.last)
            if p is not None:
                opts.fail("gamma", gamma, f"makes 1 + gamma*progress <= 0 at {ctx.at(p)} "
                          "(the lr would be infinite, NaN or negative there); over this run "
                          f"Inv needs gamma > {-1 / ctx.last:.3g}")
        grows = lambda q: -power * math.log1p(gamma * q) > math.log(MAX_FACTOR)  # noqa: E731
        p = first_true(grows, 1, ctx.last) if power != 0 and ctx.last >= 1 else None
        if p is not None and (gamma > 0) == (power < 0):  # the factor grows with progress
            opts.fail("power", power, f"(with gamma={gamma!r}) makes the lr factor (1 + gamma*"
                      f"progress)**(-power) pass {FACTOR_TEXT} at {ctx.at(p)}")
        return cls(gamma, power)

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
        strategy = "linear" if cls is LinearAnnealing else "cos"
        rest_end = (ctx.max_progress - ctx.last) / ctx.max_progress
        return cls(*_target(opts, ctx, rest_end, strategy), ctx.max_progress)

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
        span = ctx.max_progress - ctx.warmup_progress
        if span <= 0:
            raise ConfigError(
                f"{opts.where}: StepFixCosineAnnealing needs a run longer than its warmup "
                f"(max progress {ctx.max_progress}, warmup {ctx.warmup_progress})"
            )
        absolute, rel = _target(opts, ctx, (ctx.max_progress - ctx.last) / span)
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
        pct = opts.fraction("start_percent", 0.75)
        start = round(ctx.max_progress * pct)
        rest_end = (ctx.max_progress - ctx.last) / max(ctx.max_progress - start, 1)
        absolute, rel = _target(opts, ctx, rest_end)
        return cls(start, absolute, rel, ctx.max_progress)

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
        if not isinstance(periods, (list, tuple)) or not periods:
            opts.fail("periods", periods, "must be a non-empty list of positive ints")
        periods = tuple(opts.numbers("periods", periods, integer=True, low=0, low_open=True))
        if sum(periods) > ITERATION_LIMIT:
            opts.fail("periods", list(periods), f"sum to {sum(periods)}, past {ITERATION_LIMIT} "
                      "(2**31 - 1), the most iterations the compiled step counts (int32)")
        weights = opts.get("restart_weights", [1])
        if not isinstance(weights, (list, tuple)) or len(weights) != len(periods):
            opts.fail("restart_weights", weights,
                      f"must be a list as long as periods ({len(periods)} entries)")
        weights = tuple(float(w) for w in opts.numbers("restart_weights", weights, finite=True))
        if sum(periods) < ctx.max_progress:
            raise ConfigError(
                f"{opts.where}.periods={list(periods)} cover {sum(periods)} "
                f"{'epochs' if ctx.by_epoch else 'iterations'}, shorter than the run "
                f"({ctx.max_progress}); upstream fails past the last period"
            )
        starts = [sum(periods[:i]) for i in range(len(periods))]
        i = max(j for j, start in enumerate(starts) if start <= ctx.last)
        absolute, rel = _target(opts, ctx, (periods[i] - (ctx.last - starts[i])) / periods[i])
        check_restart_weights(opts, ctx, weights, starts, absolute, rel)
        return cls(periods, weights, absolute, rel)

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

