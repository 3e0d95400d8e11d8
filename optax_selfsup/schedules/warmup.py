"""Warmup, written once, wrapping any lr or momentum policy (SPEC section 2).

With ``r`` the regular value at this moment and ``W`` the warmup length in
iterations (``warmup_iters * steps_per_epoch`` when ``warmup_by_epoch``)::

    constant: r * ratio
    linear:   r * (1 - (1 - it/W) * (1 - ratio))
    exp:      r * ratio ** (1 - it/W)

applied while ``it < W``. Momentum warmup divides by the same factor instead
(mmcv ``MomentumUpdaterHook.get_warmup_momentum``). MMSelfSup's
``StepFixCosineAnnealing`` uses ``r * it/W`` as its linear warmup.
Upstream: ``LrUpdaterHook.get_warmup_lr`` (mmcv 1.7).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from ..errors import ConfigError
from ..options import ITERATION_LIMIT_TEXT, Options
from ..validation import ITERATION_LIMIT
from .anneal import float_dtype, ratio
from .clock import Clock

WARMUP_TYPES = ("constant", "linear", "exp")


@dataclasses.dataclass(frozen=True)
class Warmup:
    kind: str
    length: int  # W, in iterations
    ratio: float
    divide: bool = False  # momentum: divide by the factor
    plain_linear: bool = False  # StepFixCosineAnnealing: linear factor it/W

    def factor(self, it):
        dt = float_dtype()
        if self.kind == "constant":
            return jnp.full(jnp.shape(it), self.ratio, dt)
        if self.kind == "linear":
            done = ratio(it, self.length)  # it/W
            if self.plain_linear:
                return done
            # 1 - (1 - it/W)(1 - ratio) == ratio + (it/W)(1 - ratio): no cancellation at it=0
            return self.ratio + done * (1.0 - self.ratio)
        rest = ratio(self.length - it, self.length)  # 1 - it/W, exact near W
        return jnp.power(jnp.asarray(self.ratio, dt), rest)

    def __call__(self, it, regular):
        f = self.factor(it)
        warmed = regular / f if self.divide else regular * f
        return jnp.where(it < self.length, warmed, regular)


def parse_warmup(opts: Options, kind: str, clock: Clock, *, plain_linear: bool) -> Warmup | None:
    """Read warmup, warmup_iters, warmup_ratio (and warmup_by_epoch for the lr)."""
    warmup = opts.get("warmup", None)
    if warmup is not None and warmup not in WARMUP_TYPES:
        opts.fail("warmup", warmup, f"is not one of None, {', '.join(map(repr, WARMUP_TYPES))}")
    by_epoch = False
    if kind == "lr":
        by_epoch = opts.flag("warmup_by_epoch", False)
        if by_epoch and not clock.epoch_based:
            raise ConfigError(
                f"{opts.where}.warmup_by_epoch=True is refused under IterBasedRunner: there "
                "are no epochs to count the warmup in (upstream crashes); give warmup_iters "
                "in iterations with warmup_by_epoch=False"
            )
    if warmup is None:
        opts.get("warmup_iters", 0)
        opts.get("warmup_ratio", None)
        return None
    iters = opts.number("warmup_iters", integer=True, low=0, low_open=True, iterations=True)
    rat = opts.number("warmup_ratio", 0.1 if kind == "lr" else 0.9, low=0, low_open=True,
                      high=1)
    length = iters * clock.steps_per_epoch if by_epoch else iters
    if length > ITERATION_LIMIT:
        opts.fail("warmup_iters", iters, f"epochs (warmup_by_epoch=True) * steps_per_epoch "
                  f"{clock.steps_per_epoch} = {length} iterations {ITERATION_LIMIT_TEXT}")
    return Warmup(warmup, length, float(rat), divide=(kind == "momentum"),
                  plain_linear=plain_linear)
