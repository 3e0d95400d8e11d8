"""The iteration-only policies: Cyclic and OneCycle (lr and momentum).

Upstream: ``CyclicLrUpdaterHook`` / ``CyclicMomentumUpdaterHook`` and
``OneCycleLrUpdaterHook`` / ``OneCycleMomentumUpdaterHook`` (mmcv 1.7). All
of them require ``by_epoch=False``.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from ..errors import ConfigError
from ..options import Options
from ..validation import MAX_FACTOR
from .anneal import anneal, const_pow, offset, ratio
from .mmcv1_policies import Policy, PolicyContext

ANNEAL_STRATEGIES = ("cos", "linear")


RATIO = dict(low=0, high=MAX_FACTOR, finite=True)  # a factor of the base value


def _target_ratio(opts: Options, default):
    """mmcv's target_ratio: a number r means (r, r/1e5); a 1-sequence likewise. Each
    ratio >= 0: the values are mixtures of base, base*hi and base*lo."""
    value = opts.get("target_ratio", default)
    if isinstance(value, (list, tuple)):
        if len(value) not in (1, 2):
            opts.fail("target_ratio", value, "must be a number or a tuple of one or two "
                      "numbers")
        ratios = opts.numbers("target_ratio", value, **RATIO)
    else:
        ratios = [opts.check_number("target_ratio", value, value, **RATIO)]
    hi = float(ratios[0])
    return hi, float(ratios[1]) if len(ratios) == 2 else hi / 1e5


@dataclasses.dataclass(frozen=True)
class Cyclic(Policy):
    """Cycles of ``phase = max_iters // cyclic_times`` iterations: ratio 1 -> hi over
    ``[0, up)``, hi -> lo over ``[up, phase)``; cycle ``c`` scales the ratio of the
    segment that starts at 0 at its end, of the other at its start:
    ``r -> 1 - s + r*s`` with ``s = gamma**c``."""

    name = "Cyclic"
    iteration_only = True
    phase: int
    up: int
    hi: float
    lo: float
    gamma: float
    strategy: str

    @classmethod
    def from_config(cls, opts: Options, ctx: PolicyContext):
        default = (10, 1e-4) if ctx.kind == "lr" else (0.85 / 0.95, 1)
        hi, lo = _target_ratio(opts, default)
        times = opts.number("cyclic_times", 1, integer=True, low=1, iterations=True)
        up_ratio = opts.number("step_ratio_up", 0.4, low=0, high=1, high_open=True)
        gamma = opts.number("gamma", 1.0, low=0, low_open=True, high=1)
        strategy = opts.choice("anneal_strategy", ANNEAL_STRATEGIES, "cos")
        phase = ctx.max_iters // times
        if phase == 0:
            opts.fail("cyclic_times", times, f"leaves cycles of 0 iterations in a "
                      f"{ctx.max_iters}-iteration run")
        return cls(phase, int(up_ratio * phase), hi, lo, gamma, strategy)

    def __call__(self, it, base):
        cycle, j = it // self.phase, it % self.phase
        s = const_pow(self.gamma, cycle)
        up = max(self.up, 1)
        first = anneal(self.strategy, base, base * (1 - s + self.hi * s),
                       ratio(j, up), ratio(up - j, up))
        if self.up > 0:
            start, end = 1 - s + self.hi * s, self.lo
        else:  # the second segment starts at 0, so its END ratio is the scaled one
            start, end = self.hi, 1 - s + self.lo * s
        span = self.phase - self.up
        second = anneal(self.strategy, base * start, base * end,
                        ratio(j - self.up, span), ratio(self.phase - j, span))
        return jnp.where(j < self.up, first, second)


def _phase_value(it, phases, values, strategy):
    """Piecewise anneal over phases given by their end iterations.

    ``phases`` is a list of ``(end, a, b)``: the phase runs from the previous end
    (0 for the first) to ``end`` and anneals ``values[a] -> values[b]`` with
    ``pct = (it - start) / (end - start)``. The first phase with ``it <= end``
    applies; past every end, the last one does (upstream's momentum rule; the
    lr's last phase ends at ``total_steps - 1 >= max_iters - 1``).
    """
    hit = jnp.stack([it <= end for end, _, _ in phases])
    idx = jnp.where(jnp.any(hit, axis=0), jnp.argmax(hit, axis=0), len(phases) - 1)
    result, start = None, 0.0
    for i, (end, a, b) in enumerate(phases):
        span = end - start
        value = anneal(strategy, values[a], values[b],
                       offset(it, start) / span, -offset(it, end) / span)
        result = value if result is None else jnp.where(idx == i, value, result)
        start = end
    return result


def _check_phases(opts: Options, phases, last_it: int):
    """Refuse the phase layouts on which upstream divides by zero."""
    if phases[0][0] == 0:
        raise ConfigError(f"{opts.where}: pct_start * total steps = 1 gives a first phase of "
                          "zero length; upstream divides by zero at iteration 0")
    if phases[-1][0] == phases[-2][0] and last_it > phases[-1][0]:
        raise ConfigError(f"{opts.where}: the last phase has zero length (ends at iteration "
                          f"{phases[-1][0]}); upstream divides by zero after it")


def _per_group(opts: Options, key, value):
    """A number >= 0, or a non-empty list of them (one per param group)."""
    if isinstance(value, (list, tuple)):
        if not value:
            opts.fail(key, value, "must be a number or a list of numbers, one per param group")
        return tuple(float(v) for v in opts.numbers(key, value, low=0, finite=True))
    return float(opts.check_number(key, value, value, low=0, finite=True))


def _pick(name, value, group_index):
    if not isinstance(value, tuple):
        return value
    if group_index is None:
        raise ConfigError(f"{name} is given per param group ({len(value)} values): pass the "
                          "group's index")
    if not 0 <= group_index < len(value):
        raise ConfigError(f"{name} has {len(value)} per-group values, no entry for param "
                          f"group {group_index}")
    return value[group_index]


def _pct_start(opts: Options):
    return opts.fraction("pct_start", 0.3)


@dataclasses.dataclass(frozen=True)
class OneCycleLr(Policy):
    """1cycle lr: the base is ``max_lr / div_factor`` (max_lr replaces the optimizer's
    lr); phases end at ``pct*total - 1`` (and ``2*pct*total - 2``) and ``total - 1``."""

    name = "OneCycle"
    kinds = ("lr",)
    iteration_only = True
    max_lr: float | tuple[float, ...]
    div_factor: float
    phases: tuple
    strategy: str

    @classmethod
    def from_config(cls, opts, ctx):
        max_lr = _per_group(opts, "max_lr", opts.get("max_lr"))
        total = opts.number("total_steps", None, integer=True, low=1, allow_none=True,
                            iterations=True)
        total = ctx.max_iters if total is None else total
        if total < ctx.max_iters:
            opts.fail("total_steps", total, f"is shorter than the run ({ctx.max_iters} "
                      "iterations)")
        pct = _pct_start(opts)
        strategy = opts.choice("anneal_strategy", ANNEAL_STRATEGIES, "cos")
        # the lr moves between max_lr/div, max_lr and max_lr/(div*final): factors <= 2**100
        div = opts.number("div_factor", 25, low=1 / MAX_FACTOR, finite=True)
        final_div = opts.number("final_div_factor", 1e4, low=0, low_open=True, finite=True)
        if div * final_div < 1 / MAX_FACTOR:
            opts.fail("final_div_factor", final_div, f"(with div_factor={div!r}) makes the "
                      "final lr max_lr/(div_factor*final_div_factor) more than 2**100 times "
                      "max_lr")
        # values: index 0 -> 1, 1 -> div, 2 -> 1/final_div (ratios of the base)
        if opts.flag("three_phase", False):
            phases = ((pct * total - 1, 0, 1), (2 * pct * total - 2, 1, 0), (total - 1, 0, 2))
        else:
            phases = ((pct * total - 1, 0, 1), (total - 1, 1, 2))
        _check_phases(opts, phases, ctx.max_iters - 1)
        return cls(max_lr, float(div), (phases, 1.0 / final_div), strategy)

    def base_value(self, base, group_index):
        return _pick("lr_config.max_lr", self.max_lr, group_index) / self.div_factor

    def per_group_options(self):
        return {"max_lr": self.max_lr} if isinstance(self.max_lr, tuple) else {}

    def __call__(self, it, base):
        phases, final = self.phases
        values = (base, base * self.div_factor, base * final)
        return _phase_value(it, phases, values, self.strategy)


@dataclasses.dataclass(frozen=True)
class OneCycleMomentum(Policy):
    """1cycle momentum, inverse to the lr, over phases of ``N = max_iters``; the
    group's momentum is replaced by ``max_momentum``; past the last phase's end
    the last phase continues. The base is the pair (base_momentum, max_momentum)."""

    name = "OneCycle"
    kinds = ("momentum",)
    iteration_only = True
    base_momentum: float | tuple[float, ...]
    max_momentum: float | tuple[float, ...]
    phases: tuple
    strategy: str

    @classmethod
    def from_config(cls, opts, ctx):
        base_m = _per_group(opts, "base_momentum", opts.get("base_momentum", 0.85))
        max_m = _per_group(opts, "max_momentum", opts.get("max_momentum", 0.95))
        pct = _pct_start(opts)
        strategy = opts.choice("anneal_strategy", ANNEAL_STRATEGIES, "cos")
        n = ctx.max_iters
        # values: index 0 -> base_momentum, 1 -> max_momentum
        if opts.flag("three_phase", False):
            phases = ((pct * n - 1, 1, 0), (2 * pct * n - 2, 0, 1), (n - 1, 1, 1))
        else:
            phases = ((pct * n - 1, 1, 0), (n - 1, 0, 1))
        _check_phases(opts, phases, n - 1)
        return cls(base_m, max_m, phases, strategy)

    def base_value(self, base, group_index):
        return (_pick("momentum_config.base_momentum", self.base_momentum, group_index),
                _pick("momentum_config.max_momentum", self.max_momentum, group_index))

    def per_group_options(self):
        return {k: v for k, v in (("base_momentum", self.base_momentum),
                                  ("max_momentum", self.max_momentum)) if isinstance(v, tuple)}

    def __call__(self, it, base):
        return _phase_value(it, self.phases, base, self.strategy)


ITERATION_POLICIES = (Cyclic, OneCycleLr, OneCycleMomentum)
