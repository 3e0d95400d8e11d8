"""MMEngine's parameter schedulers, one class per family, as affine step maps.

Every upstream ``_get_value`` maps the group's current value ``v`` to
``alpha * v + beta * b + gamma`` (``b``: the optimizer's base value of the group;
a scheduler's own base ``initial_<param>`` is ``base_a * b + base_c``). Each
family gives, for its ``n``-th active step (``n = last_step``):

* ``step(n, ctx)``: that map in float64, as upstream computes it (host side);
* ``ratio(xp, n, n0, ctx)``: the slope of the composition of steps ``n0+1..n``
  in a stable closed form (numpy on the host, jnp in the compiled step), valid
  where ``interior`` says the steps share a fixed point and no hard event lies
  in between;
* ``interior(lo, hi, ctx)``: what steps ``lo+1..hi`` do: ``None`` (identity),
  ``(rho, c)`` (each step is ``v -> e + r (v - e)`` with the fixed point
  ``e = rho * b + c``; multiplicative families have ``e = 0``) or ``SET``;
* ``hard_events(n_max)``: steps that break the closed form (a restart, the
  cosine's periodic turn-around), ``sparse_events(lo, hi)``: the steps of a
  mostly-identity family (Step, MultiStep, Constant) that are not identities.

Upstream: ``mmengine/optim/scheduler/param_scheduler.py`` (mmengine 0.10) and
MMPretrain's ``CosineAnnealingWeightDecay``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from typing import ClassVar

import numpy as np

from .anneal import const_pow

SET = "set"


@dataclasses.dataclass(frozen=True)
class Timing:
    """Where a scheduler sits in the list and when it steps (after conversion)."""

    index: int
    where: str
    type: str
    param: str
    by_epoch: bool
    begin: int
    end: int


@dataclasses.dataclass
class Ctx:
    """Per-variant facts of one scheduler in one chain (host, float64 arrays [V])."""

    base_a: float
    base_c: np.ndarray
    zero: np.ndarray  # the variant's optimizer base is exactly 0
    onecycle: tuple | None = None  # (initial, max, min) arrays for OneCycle


def _arr(xp, x, dt):
    return xp.asarray(x, dt)


def _pow(xp, base: float, k, dt):
    if xp is np:
        return np.float64(base) ** np.asarray(k, np.float64)
    return const_pow(base, k)


def _guarded_ratio(xp, num, den, dt):
    safe = xp.where(den == 0, _arr(xp, 1.0, dt), den)
    return xp.where(den == 0, _arr(xp, 1.0, dt), num / safe)


IDENTITY = (1.0, 0.0, 0.0)
ZERO_FIXED = (0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class Scheduler:
    timing: Timing
    sparse: ClassVar[bool] = False

    def step(self, n: int, ctx: Ctx):
        return IDENTITY

    def hard_events(self, n_max: int) -> list[int]:
        return []

    def sparse_events(self, lo: int, hi: int) -> list[int]:
        return []

    def interior(self, lo: int, hi: int, ctx: Ctx):
        return None

    def ratio(self, xp, n, n0, ctx: Ctx, dt):
        return _arr(xp, 1.0, dt)


# --- multiplicative families (fixed point 0) ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step(Scheduler):
    """``v *= gamma`` at every ``n`` that is a positive multiple of ``step_size``."""

    step_size: int
    gamma: float
    sparse: ClassVar[bool] = True

    def step(self, n, ctx):
        return (self.gamma, 0.0, 0.0) if n > 0 and n % self.step_size == 0 else IDENTITY

    def sparse_events(self, lo, hi):
        first = (lo // self.step_size + 1) * self.step_size
        return list(range(max(first, self.step_size), hi + 1, self.step_size))

    def interior(self, lo, hi, ctx):
        return ZERO_FIXED if self.sparse_events(lo, hi) else None

    def ratio(self, xp, n, n0, ctx, dt):
        return _pow(xp, self.gamma, n // self.step_size - n0 // self.step_size, dt)


@dataclasses.dataclass(frozen=True)
class MultiStep(Scheduler):
    """``v *= gamma ** count`` at each milestone (a ``Counter``: repeats multiply)."""

    milestones: tuple[int, ...]  # sorted, with repeats
    gamma: float
    sparse: ClassVar[bool] = True

    def step(self, n, ctx):
        count = self.milestones.count(n)
        return (self.gamma**count, 0.0, 0.0) if count else IDENTITY

    def sparse_events(self, lo, hi):
        return sorted({m for m in self.milestones if lo < m <= hi})

    def interior(self, lo, hi, ctx):
        return ZERO_FIXED if self.sparse_events(lo, hi) else None

    def _count(self, xp, n):
        return xp.searchsorted(xp.asarray(self.milestones), n, side="right")

    def ratio(self, xp, n, n0, ctx, dt):
        return _pow(xp, self.gamma, self._count(xp, n) - self._count(xp, n0), dt)


@dataclasses.dataclass(frozen=True)
class Constant(Scheduler):
    """``v *= factor`` at ``n = 0``, ``v *= 1 / factor`` at ``n = end - begin - 1 > 0``."""

    factor: float
    total: int
    sparse: ClassVar[bool] = True

    def step(self, n, ctx):
        if n == 0:
            return (self.factor, 0.0, 0.0)
        return (1.0 / self.factor, 0.0, 0.0) if n == self.total else IDENTITY

    def sparse_events(self, lo, hi):
        return [self.total] if lo < self.total <= hi else []

    def interior(self, lo, hi, ctx):
        return ZERO_FIXED if self.sparse_events(lo, hi) else None

    def ratio(self, xp, n, n0, ctx, dt):
        hit = (n0 < self.total) & (n >= self.total)
        return xp.where(hit, _arr(xp, 1.0 / self.factor, dt), _arr(xp, 1.0, dt))


@dataclasses.dataclass(frozen=True)
class Exponential(Scheduler):
    """``v *= gamma`` at every ``n >= 1``."""

    gamma: float

    def step(self, n, ctx):
        return (self.gamma, 0.0, 0.0) if n > 0 else IDENTITY

    def interior(self, lo, hi, ctx):
        return ZERO_FIXED if hi > lo and self.gamma != 1 else None

    def ratio(self, xp, n, n0, ctx, dt):
        return _pow(xp, self.gamma, n - n0, dt)


@dataclasses.dataclass(frozen=True)
class Linear(Scheduler):
    """Factor ``start + (end - start) n / total``: ``v *= start_factor`` at ``n = 0``, then
    ``v *= 1 + d / (total * start + (n - 1) d)``, ``d = end - start``. The steps telescope
    to ``(K + d n) / (K + d n0)`` with ``K = total * start``."""

    start_factor: float
    end_factor: float
    total: int

    def step(self, n, ctx):
        if n == 0:
            return (self.start_factor, 0.0, 0.0)
        d = self.end_factor - self.start_factor
        return (1.0 + d / (self.total * self.start_factor + (n - 1) * d), 0.0, 0.0)

    def interior(self, lo, hi, ctx):
        return ZERO_FIXED if hi > lo and self.end_factor != self.start_factor else None

    def ratio(self, xp, n, n0, ctx, dt):
        k = _arr(xp, self.total * self.start_factor, dt)
        d = _arr(xp, self.end_factor - self.start_factor, dt)
        return _guarded_ratio(xp, k + d * n.astype(dt), k + d * n0.astype(dt), dt)


# --- affine families with a fixed point ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Poly(Scheduler):
    """``v -> e + (v - e) (1 - 1 / (total - n + 1)) ** power`` for ``n >= 1``: the steps
    telescope to ``((total - n) / (total - n0)) ** power``."""

    eta_min: float
    power: float
    total: int

    def step(self, n, ctx):
        if n == 0:
            return IDENTITY
        r = (1 - 1 / (self.total - n + 1)) ** self.power
        return (r, 0.0, (1 - r) * self.eta_min)

    def interior(self, lo, hi, ctx):
        return (0.0, self.eta_min) if hi > lo and self.power != 0 else None

    def ratio(self, xp, n, n0, ctx, dt):
        q = _guarded_ratio(xp, (self.total - n).astype(dt), (self.total - n0).astype(dt), dt)
        return q if self.power == 1 else q**self.power


def _cos_step(r, rho, c):
    """``v -> r (v - e) + e`` with ``e = rho * b + c``."""
    return (r, (1 - r) * rho, (1 - r) * c)


def _sin_half(xp, k, period: int, dt, periodic: bool):
    """``sin(pi (P - m) / (2P))`` with ``m = k mod 2P``: ``1 + cos(pi k / P)`` is twice its
    square, evaluated from an exact integer difference (no cancellation near ``k = P``)."""
    m = k % (2 * period) if periodic else k
    return xp.sin((period - m).astype(dt) * _arr(xp, math.pi / (2 * period), dt))


@dataclasses.dataclass(frozen=True)
class Cosine(Scheduler):
    """``v -> e + (1 + cos(pi n / T)) / (1 + cos(pi (n - 1) / T)) (v - e)`` for ``n >= 1``;
    at ``n = T + 1 + 2kT`` instead ``v += (base - e)(1 - cos(pi / T)) / 2`` (the periodic
    continuation past ``T``). ``e = eta_min`` or ``eta_min_ratio * base``."""

    T: int
    eta_min: float | None
    eta_min_ratio: float | None
    periodic: bool  # the run reaches n > T

    def fixed_point(self, ctx):
        if self.eta_min_ratio is None:
            return (0.0, self.eta_min)
        return (self.eta_min_ratio * ctx.base_a, self.eta_min_ratio * ctx.base_c)

    def is_special(self, n):
        return n >= 1 and (n - 1 - self.T) % (2 * self.T) == 0

    def step(self, n, ctx):
        rho, c = self.fixed_point(ctx)
        if n == 0:
            return IDENTITY
        if self.is_special(n):
            s = (1 - math.cos(math.pi / self.T)) / 2
            return (1.0, (ctx.base_a - rho) * s, (ctx.base_c - c) * s)
        r = (1 + math.cos(math.pi * n / self.T)) / (1 + math.cos(math.pi * (n - 1) / self.T))
        return _cos_step(r, rho, c)

    def hard_events(self, n_max):
        return list(range(self.T + 1, n_max + 1, 2 * self.T))

    def interior(self, lo, hi, ctx):
        return self.fixed_point(ctx) if hi > lo else None

    def ratio(self, xp, n, n0, ctx, dt):
        s = _sin_half(xp, n, self.T, dt, self.periodic)
        s0 = _sin_half(xp, n0, self.T, dt, self.periodic)
        return _guarded_ratio(xp, s, s0, dt) ** 2


@dataclasses.dataclass(frozen=True)
class CosineWeightDecay(Cosine):
    """MMPretrain's ``CosineAnnealingWeightDecay``: a group whose base is 0 is set to 0 at
    every step ``n >= 1``; the others follow the cosine."""

    def step(self, n, ctx):
        alpha, beta, gamma = (np.broadcast_to(np.asarray(x, np.float64), ctx.zero.shape)
                              for x in super().step(n, ctx))
        if n == 0:
            return alpha, beta, gamma
        z = ctx.zero
        return np.where(z, 0.0, alpha), np.where(z, 0.0, beta), np.where(z, 0.0, gamma)

    def interior(self, lo, hi, ctx):
        if hi <= lo:
            return None
        rho, c = (np.broadcast_to(np.asarray(x, np.float64), ctx.zero.shape)
                  for x in self.fixed_point(ctx))
        return np.where(ctx.zero, 0.0, rho), np.where(ctx.zero, 0.0, c)

    def ratio(self, xp, n, n0, ctx, dt):
        r = super().ratio(xp, n, n0, ctx, dt)
        return xp.where(xp.asarray(ctx.zero), _arr(xp, 0.0, dt), r)


@dataclasses.dataclass(frozen=True)
class CosineRestart(Scheduler):
    """Cosine periods; the first step of period ``j`` sets ``v = base * restart_weights[j]``;
    after the last period the value is left alone."""

    periods: tuple[int, ...]
    restart_weights: tuple[float, ...]
    eta_min: float | None
    eta_min_ratio: float | None

    @property
    def cumulative(self):
        return tuple(sum(self.periods[: i + 1]) for i in range(len(self.periods)))

    fixed_point = Cosine.fixed_point

    def _position(self, n):
        idx = bisect.bisect_right(self.cumulative, n)
        return None if idx == len(self.periods) else idx

    def step(self, n, ctx):
        idx = self._position(n)
        if idx is None:
            return IDENTITY
        period, start = self.periods[idx], self.cumulative[idx] - self.periods[idx]
        k = n - start
        if k == 0:
            w = self.restart_weights[idx]
            return (0.0, ctx.base_a * w, ctx.base_c * w)
        r = (1 + math.cos(math.pi * k / period)) / (1 + math.cos(math.pi * (k - 1) / period))
        return _cos_step(r, *self.fixed_point(ctx))

    def hard_events(self, n_max):
        return [c for c in self.cumulative if c <= n_max]

    def interior(self, lo, hi, ctx):
        return self.fixed_point(ctx) if hi > lo and lo < self.cumulative[-1] else None

    def ratio(self, xp, n, n0, ctx, dt):
        cum = xp.asarray(self.cumulative)
        periods = xp.asarray(self.periods)
        idx = xp.minimum(xp.searchsorted(cum, n0, side="right"), len(self.periods) - 1)
        period = periods[idx]
        start = cum[idx] - period
        half = _arr(xp, math.pi / 2, dt) / period.astype(dt)
        s = xp.sin((period - (n - start)).astype(dt) * half)
        s0 = xp.sin((period - (n0 - start)).astype(dt) * half)
        return _guarded_ratio(xp, s, s0, dt) ** 2
