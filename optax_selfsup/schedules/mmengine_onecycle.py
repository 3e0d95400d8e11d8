"""MMEngine's ``OneCycleParamScheduler`` / ``OneCycleLR`` (closed form upstream too).

At construction it *sets* each group's ``initial_lr = eta_max / div_factor``,
``max_lr = eta_max`` and ``min_lr = initial_lr / final_div_factor`` (ignoring the
optimizer's lr; a scheduler built after it takes ``initial_lr`` as its base),
and every step sets the value from those by phase: two phases (up to
``pct_start * total_steps - 1``, then down to ``total_steps - 1``) or three.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .mmengine_schedulers import SET, Scheduler, _arr


@dataclasses.dataclass(frozen=True)
class OneCycle(Scheduler):
    """Closed form: every step sets ``v`` from the group's ``initial``/``max``/``min``
    (``eta_max / div_factor``, ``eta_max``, ``initial / final_div_factor``)."""

    eta_max: float | tuple[float, ...]
    total_steps: int
    pct_start: float
    anneal_strategy: str
    div_factor: float
    final_div_factor: float
    three_phase: bool

    def phases(self):
        """``(start_step, end_step, start_key, end_key)`` with keys 0 initial, 1 max, 2 min."""
        p, t = self.pct_start, self.total_steps
        if self.three_phase:
            ends = [(float(p * t) - 1, 0, 1), (float(2 * p * t) - 2, 1, 0), (t - 1, 0, 2)]
        else:
            ends = [(float(p * t) - 1, 0, 1), (t - 1, 1, 2)]
        out, start = [], 0
        for end, a, b in ends:
            out.append((start, end, a, b))
            start = end
        return out

    def group_values(self, eta_max: float):
        initial = eta_max / self.div_factor
        return initial, eta_max, initial / self.final_div_factor

    def host_value(self, n: int, keys):
        """Upstream's ``_get_value`` for one group, verbatim."""
        phases = self.phases()
        for i, (start, end, a, b) in enumerate(phases):
            if n <= end or i == len(phases) - 1:
                pct = (n - start) / (end - start)
                if self.anneal_strategy == "cos":
                    return keys[b] + (keys[a] - keys[b]) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (keys[b] - keys[a]) * pct + keys[a]
        raise AssertionError("unreachable")

    def step(self, n, ctx):
        keys = np.stack(ctx.onecycle)  # [3, V]
        value = np.array([self.host_value(n, keys[:, v]) for v in range(keys.shape[1])])
        return (0.0, 0.0, value)

    def interior(self, lo, hi, ctx):
        return SET if hi > lo else None

    def value(self, xp, n, ctx, dt):
        """The value after step ``n`` (per variant), stably: ``1 + cos(pi f)`` as
        ``2 sin^2(pi (1 - f) / 2)``."""
        keys = [_arr(xp, k, dt) for k in ctx.onecycle]
        out = None
        for start, end, a, b in reversed(self.phases()):
            width = _arr(xp, end - start, dt)
            done = (n.astype(dt) - _arr(xp, start, dt)) / width
            rest = (_arr(xp, end, dt) - n.astype(dt)) / width
            if self.anneal_strategy == "cos":
                half = rest * _arr(xp, math.pi / 2, dt)
                v = xp.sin(half) ** 2 * keys[a] + xp.cos(half) ** 2 * keys[b]
            else:
                v = rest * keys[a] + done * keys[b]
            out = v if out is None else xp.where(n <= end, v, out)
        return out
