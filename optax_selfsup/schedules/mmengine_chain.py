"""A list of MMEngine schedulers of one parameter compiled into segments (host side).

The run's time points ``0 .. max_iters-1`` are cut at every scheduler's begin
and end, at its hard events and at hook writes. In a segment ``[t0, t1)`` whose
active steps share one fixed point ``e`` (all multiplicative, or all pulling
towards the same ``eta_min``; they commute) the value is

    v(t) = e + (u - e) * prod_i R_i(n_i(t0), n_i(t))

with each ``R_i`` a stable closed form and ``u = A b + C`` the value at ``t0``
as an affine function of the group base ``b``; ``A`` and ``C`` are composed in
float64 here from upstream's own step formulas. A segment where only OneCycle
steps is its closed form. Where active steps do not commute (a LinearLR warmup
overlapping a cosine with ``eta_min != 0``, a OneCycle overlapped by another
scheduler) the segment is first cut at the rare steps of Step / MultiStep /
Constant; what still does not commute becomes a table of per-time-point ``(A, C)``
composed here step by step, exactly as upstream recurses.

Groups fall into *variants* (hook-write masks, OneCycle per-group ``eta_max``,
and for the weight-decay cosine whether the base is 0); every coefficient is
an array over variants.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .mmengine_loop import TrainLoop
from .mmengine_schedulers import SET, Ctx, Scheduler

CLOSED, TABLE, ONECYCLE = 0, 1, 2


def calls_at(t: int, scheds, loop: TrainLoop):
    """``(index, n)`` of every scheduler step at time point ``t``, in upstream order."""
    out = []
    for i, s in enumerate(scheds):
        tm = s.timing
        if t == 0:
            g = 0
        elif not tm.by_epoch:
            g = t
        else:
            continue
        if tm.begin <= g < tm.end:
            out.append((i, g - tm.begin))
    if t > 0 and loop.by_epoch and t % loop.steps_per_epoch == 0:
        g = t // loop.steps_per_epoch
        for i, s in enumerate(scheds):
            tm = s.timing
            if tm.by_epoch and tm.begin <= g < tm.end:
                out.append((i, g - tm.begin))
    return out


def progress(tm, t, loop: TrainLoop, xp=np):
    """The scheduler's step count ``G`` by time point ``t`` (host ints or traced arrays)."""
    if not tm.by_epoch:
        return t
    if loop.by_epoch:
        return t // loop.steps_per_epoch
    return t * 0


def n_at(tm, t, loop: TrainLoop, xp=np):
    """``last_step`` after time point ``t``: -1 before ``begin``, frozen after ``end``."""
    return xp.clip(progress(tm, t, loop, xp) - tm.begin, -1, tm.end - tm.begin - 1)


def time_of(tm, g: int, loop: TrainLoop) -> int | None:
    if not tm.by_epoch:
        return g
    if loop.by_epoch:
        return g * loop.steps_per_epoch
    return 0 if g == 0 else None


@dataclasses.dataclass
class Compiled:
    starts: np.ndarray  # [S] int64
    mode: np.ndarray  # [S] int8
    rho: np.ndarray  # [S, V] fixed point e = rho * b + c
    c: np.ndarray
    da: np.ndarray  # [S, V] u - e = da * b + dc
    dc: np.ndarray
    act: np.ndarray  # [S, K] which ratio schedulers act in the segment
    ratio_idx: list[int]  # K scheduler indices
    onecycle_idx: int | None
    table_off: np.ndarray  # [S]
    ta: np.ndarray  # [R, V]
    tc: np.ndarray


def _apply(A, C, maps):
    for alpha, beta, gamma in maps:
        A, C = alpha * A + beta, alpha * C + gamma
    return A, C


def compile_chain(scheds: list[Scheduler], ctxs: list[Ctx], loop: TrainLoop, n_variants: int,
                  epoch_writes: list[tuple[np.ndarray, float]]) -> Compiled:
    N, V = loop.max_iters, n_variants
    full = lambda x: np.broadcast_to(np.asarray(x, np.float64), (V,)).copy()  # noqa: E731

    def state_after(t, A, C):
        A, C = _apply(A, C, [scheds[i].step(n, ctxs[i]) for i, n in calls_at(t, scheds, loop)])
        if epoch_writes and loop.epoch_starts(t):
            for mask, value in epoch_writes:
                A, C = np.where(mask, 0.0, A), np.where(mask, value, C)
        return full(A), full(C)

    # 1. cut at begin / end / hard events / epoch writes
    cuts = {0}
    for s in scheds:
        tm = s.timing
        n_max = int(n_at(tm, N - 1, loop))
        for g in [tm.begin, tm.end] + [tm.begin + n for n in s.hard_events(n_max)]:
            t = time_of(tm, g, loop)
            if t is not None and 0 <= t < N:
                cuts.add(t)
    if epoch_writes and loop.by_epoch:
        cuts.update(range(0, N, loop.steps_per_epoch))

    def interiors(t0, t1):
        out = []
        for i, s in enumerate(scheds):
            lo, hi = int(n_at(s.timing, t0, loop)), int(n_at(s.timing, t1 - 1, loop))
            kind = s.interior(lo, hi, ctxs[i]) if hi > lo else None
            if kind is not None:
                out.append((i, kind))
        return out

    def commuting(kinds):
        if any(k is SET for _, k in kinds):
            return len(kinds) == 1
        points = [(full(k[0]), full(k[1])) for _, k in kinds]
        return all(np.array_equal(p[0], points[0][0]) and np.array_equal(p[1], points[0][1])
                   for p in points)

    # 2. classify; split non-commuting segments at sparse events; tables for the rest
    bounds = sorted(cuts) + [N]
    segments = []  # (t0, t1, mode, kinds)
    for t0, t1 in zip(bounds[:-1], bounds[1:]):
        kinds = interiors(t0, t1)
        if commuting(kinds):
            segments.append((t0, t1, kinds))
            continue
        sub = {t0}
        for i, _ in kinds:
            s = scheds[i]
            if s.sparse:
                lo, hi = int(n_at(s.timing, t0, loop)), int(n_at(s.timing, t1 - 1, loop))
                sub.update(time_of(s.timing, s.timing.begin + n, loop)
                           for n in s.sparse_events(lo, hi))
        sb = sorted(sub) + [t1]
        for a, b in zip(sb[:-1], sb[1:]):
            segments.append((a, b, interiors(a, b)))

    # 3. sweep: start states, closed-form ends, tables
    ratio_idx = sorted({i for t0, t1, k in segments if commuting(k)
                        for i, kind in k if kind is not SET})
    onecycle = sorted({i for t0, t1, k in segments for i, kind in k if kind is SET})
    S = len(segments)
    rows = {name: np.zeros((S, V)) for name in ("rho", "c", "da", "dc")}
    mode = np.zeros(S, np.int8)
    act = np.zeros((S, len(ratio_idx)), bool)
    table_off = np.zeros(S, np.int64)
    ta, tc = [], []
    A, C = state_after(0, full(1.0), full(0.0))
    for k, (t0, t1, kinds) in enumerate(segments):
        if not commuting(kinds):
            mode[k] = TABLE
            table_off[k] = sum(len(x) for x in ta)
            tab_a, tab_c = [A], [C]
            for t in range(t0 + 1, t1):
                A, C = state_after(t, A, C)
                tab_a.append(A)
                tab_c.append(C)
            ta.append(np.stack(tab_a))
            tc.append(np.stack(tab_c))
        elif kinds and kinds[0][1] is SET:
            mode[k] = ONECYCLE
            i = kinds[0][0]
            rows["c"][k], rows["dc"][k] = 0.0, 0.0
            rows["rho"][k], rows["da"][k] = 0.0, 0.0
            # the start value u is kept in (da, dc) with rho = c = 0
            rows["da"][k], rows["dc"][k] = A, C
            s, tm = scheds[i], scheds[i].timing
            n_end = int(n_at(tm, t1 - 1, loop))
            if n_end > int(n_at(tm, t0, loop)):
                A, C = _apply(A, C, [s.step(n_end, ctxs[i])])
                A, C = full(A), full(C)
        else:
            rho, c = (full(kinds[0][1][0]), full(kinds[0][1][1])) if kinds else (full(0), full(0))
            rows["rho"][k], rows["c"][k] = rho, c
            da, dc = A - rho, C - c
            rows["da"][k], rows["dc"][k] = da, dc
            ratio = np.ones(V)
            for i, _ in kinds:
                j = ratio_idx.index(i)
                act[k, j] = True
                tm = scheds[i].timing
                n, n0 = n_at(tm, np.int64(t1 - 1), loop), n_at(tm, np.int64(t0), loop)
                if n != n0:
                    ratio = ratio * scheds[i].ratio(np, n, n0, ctxs[i], np.float64)
            A, C = rho + da * ratio, c + dc * ratio
        if t1 < N:
            A, C = state_after(t1, A, C)
    ta = np.concatenate(ta) if ta else np.zeros((1, V))
    tc = np.concatenate(tc) if tc else np.zeros((1, V))
    # padded to powers of two (segments start past the run): arrays of a few sizes only, so
    # that eager evaluation reuses compiled operations across schedules
    starts = _pad(np.asarray([s[0] for s in segments], np.int64), N)
    return Compiled(starts, _pad(mode, 0), *(_pad(rows[n], 0.0) for n in ("rho", "c", "da",
                                                                         "dc")),
                    _pad(act, False), ratio_idx, onecycle[0] if onecycle else None,
                    _pad(table_off, 0), _pad(ta, 0.0), _pad(tc, 0.0))


def _pad(x: np.ndarray, fill) -> np.ndarray:
    size = 1 << max(len(x) - 1, 0).bit_length()
    out = np.full((size,) + x.shape[1:], fill, x.dtype)
    out[: len(x)] = x
    return out
