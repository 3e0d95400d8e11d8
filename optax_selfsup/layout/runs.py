"""Runs: contiguous rows of a flat buffer whose tensors share one static signature.

A per-tensor update rule selects code paths on static per-tensor values (flags such as
``nesterov``, which state slots exist). On the flat layout, the tensors with equal such
values that are neighbours in layout order form a *run*: rows ``[r0, r1)`` of buffer
``key`` holding tensors ``[t0, t1)`` (layout order). The flat optimizer evaluates each
run's rule over the whole buffer with per-row hyperparameters and merges the runs per
row (``flat_optimizer.py``); a layout grouped by signature has one run per distinct
signature and dtype, any other layout is still correct, with more runs.

Per run (``RunRows``; ``RunRows.whole``: a whole buffer), the per-tensor quantities a
rule needs are broadcast per row:

- ``rows_of(vector)``: per-tensor values -> ``[rows, 1]`` (one gather);
- ``norm(x)``: each tensor's 2-norm ``||x_T|| = sqrt(sum_{e in T} x_e**2)`` of a
  ``[rows, width]`` slice, per row: row sums of squares, the padded tail rows reduced
  again with the padding masked, a sorted segment sum over the run's rows, then the
  gather back.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from . import segments


class Run(NamedTuple):
    key: str  # the buffer
    r0: int  # rows [r0, r1) of the buffer
    r1: int
    t0: int  # tensors [t0, t1), layout order
    t1: int

    @property
    def rows(self) -> slice:
        return slice(self.r0, self.r1)


def split_runs(layout, signatures) -> list[Run]:
    """Maximal runs of neighbouring tensors with equal ``signatures`` (one hashable per
    tensor, layout order), never across buffers. Tensors without rows (size 0) join
    their neighbours' run."""
    out = []
    for key in layout.keys:
        start, stop = layout.tensors[key]
        t0 = start
        for i in range(start + 1, stop + 1):
            if i == stop or signatures[i] != signatures[t0]:
                r0 = int(layout.row_start[t0])
                r1 = int(layout.row_start[i - 1] + layout.rows[i - 1])
                out.append(Run(key, r0, r1, t0, i))
                t0 = i
    return out


class RunRows:
    """The per-row broadcasts of one run of ``layout`` (``whole``: of a whole buffer)."""

    @classmethod
    def whole(cls, layout, key):
        start, stop = layout.tensors[key]
        return cls(layout, Run(key, 0, layout.buffer_rows[key], start, stop))

    def __init__(self, layout, run: Run):
        self.layout, self.run = layout, run
        seg = np.asarray(layout.segment_ids[run.key][run.r0:run.r1], np.int32)
        self.seg = seg - run.t0  # each row's tensor, counted from the run's first
        # the same, trailing padding rows (no tensor) read as the last tensor's
        self.local = np.minimum(self.seg, max(run.t1 - run.t0 - 1, 0))
        tails = layout.tail_rows[run.key]
        tails = tails[(tails >= run.r0) & (tails < run.r1)]
        self.tails = tails - run.r0
        self.tail_valid = layout.valid[run.key][tails]

    def rows_of(self, vector):
        """Per-tensor values (``[n]``, layout order) -> ``[rows, 1]`` for this run."""
        index = self.local + self.run.t0
        return jnp.take(jnp.asarray(vector), jnp.asarray(index), axis=0)[:, None]

    def static_rows(self, values):
        """Per-tensor numbers of this run (a list) -> a NumPy ``[rows, 1]`` constant."""
        return np.asarray(values, np.float64)[self.local][:, None]

    def norm(self, x):
        """Each tensor's 2-norm, per row (``[rows, 1]``, ``x``'s dtype; computed in at
        least float32)."""
        wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        rows = segments.row_sum_squares(wide, method=self.layout.method)
        if self.layout.masked and self.tails.size:
            fixed = segments.row_sum_squares(wide[self.tails], method=self.layout.method,
                                              valid=self.tail_valid)
            rows = rows.at[self.tails].set(fixed, indices_are_sorted=True,
                                           unique_indices=True)
        n = self.run.t1 - self.run.t0
        sums = segments.segment_reduce(rows, jnp.asarray(self.seg), n, "sum")
        return jnp.take(jnp.sqrt(sums), jnp.asarray(self.local))[:, None].astype(x.dtype)
