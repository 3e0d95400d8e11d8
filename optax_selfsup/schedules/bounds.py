"""Build-time proof that a schedule stays on the real line over the run.

Every policy's value at a given ``progress`` is ``a * base + b`` (``b = 0`` for
the purely multiplicative ones): it is finite and ``>= 0`` for every base value
``>= 0`` (torch refuses negative lrs and momenta) exactly when ``a >= 0`` and
``b >= 0`` and both are finite. Each policy checks that analytically over the
progress values of the run (``0 .. ctx.last``), using that its coefficients are
monotone between a few known points, and refuses the config otherwise, naming
the key, the value and the first iteration that would go wrong. ``a`` may not
pass ``MAX_FACTOR`` (2**100), so a float32 value stays finite for any base
below 2**27. Past the run's end the schedule holds its last value (schedule.py),
so nothing past ``ctx.last`` needs checking.
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import MAX_FACTOR

FACTOR_TEXT = "2**100"


def first_true(predicate, lo: int, hi: int) -> int | None:
    """The smallest integer ``p`` in ``[lo, hi]`` with ``predicate(p)``, for a predicate
    that is False up to some point and True after it; None when it is never True."""
    if lo > hi or not predicate(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if predicate(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def first_power_overflow(gamma: float, k_max: int) -> int | None:
    """The first ``k <= k_max`` with ``gamma**k > MAX_FACTOR`` (None if none)."""
    if gamma <= 1 or k_max < 1:
        return None
    k = math.floor(math.log(MAX_FACTOR) / math.log(gamma)) + 1
    return k if k <= k_max else None


def affine_text(a: float, b: float) -> str:
    """``a*base + b`` for a message, e.g. ``0.25*base - 0.075``."""
    if b == 0:
        return f"{a:.4g}*base"
    return f"{a:.4g}*base {'-' if b < 0 else '+'} {abs(b):.4g}"


def negative_text(a: float, b: float, kind: str) -> str:
    """Which base values make ``a*base + b`` (``b < 0``) negative, for a message."""
    if a > 0:
        return f"negative for any base {kind} below {-b / a:.4g}"
    return f"negative for every base {kind}"


def anneal_weights(strategy: str, rest: float) -> tuple[float, float]:
    """(weight of the start value, weight of the end value) of mmcv's anneal, given
    ``rest = 1 - fraction done``: cos ``(sin^2(pi*rest/2), cos^2(pi*rest/2))``,
    linear ``(rest, 1 - rest)``."""
    if strategy == "cos":
        s2 = math.sin(0.5 * math.pi * rest) ** 2
        return s2, 1.0 - s2
    return rest, 1.0 - rest


def check_target(opts, ctx, key: str, value: float | None, rest_end: float,
                 strategy: str = "cos") -> None:
    """A ``min_<kind>`` / ``min_<kind>_ratio`` target must be >= 0: the value anneals
    toward it. ``rest_end`` is ``1 - fraction done`` at the run's last progress."""
    if value is None or value >= 0:
        return
    kind = ctx.kind
    if key.endswith("_ratio"):
        opts.fail(key, value, f"must be >= 0: the {kind} anneals toward base*{key}, a "
                  f"negative {kind}")
    a, w_end = anneal_weights(strategy, min(rest_end, 1.0))
    b = w_end * value
    if b < 0:
        opts.fail(key, value, f"must be >= 0: the {kind} anneals toward it and is "
                  f"{affine_text(a, b)} at {ctx.at(ctx.last)}, the run's last, "
                  f"{negative_text(a, b, kind)}")
    opts.fail(key, value, f"must be >= 0: the {kind} anneals toward it")


def check_gamma(opts, ctx, gamma: float, first: int, k_max: int, progress_of_k) -> None:
    """A decay factor ``gamma`` applied at progress ``first`` (then ``k_max`` times in
    the run; the k-th decay at ``progress_of_k(k)``): > 0, and ``gamma**k`` in range."""
    if gamma <= 0:
        where = ctx.at(first) + ("" if first <= ctx.last else ", past the run's end")
        opts.fail("gamma", gamma, f"must be > 0: each decay multiplies the {ctx.kind} by "
                  f"gamma, so it would be {'0' if gamma == 0 else 'negative'} from the first "
                  f"decay on, at {where}")
    k = first_power_overflow(gamma, k_max)
    if k is not None:
        opts.fail("gamma", gamma, f"makes the {ctx.kind} factor gamma**k pass {FACTOR_TEXT} at "
                  f"{ctx.at(progress_of_k(k))}")


def inv_base_positive(gamma: float, progress: int) -> bool:
    """``1 + gamma*progress > 0``, in float64 and as float32 evaluates it."""
    as_f32 = np.float32(1) + np.float32(gamma) * np.float32(progress)
    return 1.0 + gamma * progress > 0 and as_f32 > 0


def check_restart_weights(opts, ctx, weights, starts, absolute, rel) -> None:
    """Period ``i`` starts at ``w*base + (1 - w)*target``, its extreme: with a target >= 0
    that is >= 0 for every base >= 0 unless ``w < 0``, or ``w > 1`` with a positive
    ``min_lr`` or a ``min_lr_ratio`` above ``w / (w - 1)``."""
    for i, (w, start) in enumerate(zip(weights, starts)):
        if start > ctx.last:
            return
        key, where = f"restart_weights[{i}]", f"period {i} starts at {ctx.at(start)}"
        if w < 0:
            opts.fail(key, w, f"must be >= 0: {where} with the lr at {w:.4g}*base")
        if absolute is not None and absolute > 0 and w > 1:
            b = (1 - w) * absolute
            opts.fail(key, w, f"with min_lr={absolute!r}: {where} with the lr at "
                      f"{affine_text(w, b)}, {negative_text(w, b, 'lr')}; use weights <= 1 or "
                      "min_lr=0")
        if rel is not None and w + (1 - w) * rel < 0:
            opts.fail(key, w, f"with min_lr_ratio={rel!r}: {where} with the lr at base*(w + "
                      f"(1 - w)*min_lr_ratio) = {affine_text(w + (1 - w) * rel, 0)}, negative")
