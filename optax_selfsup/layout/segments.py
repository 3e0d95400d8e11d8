"""Per-tensor reductions over a ``[rows, width]`` buffer whose tensors own whole rows.

Two stages, both free of per-tensor code (their compiled size does not grow with the
number of tensors):

1. a row reduction ``[rows, width] -> [rows]`` (``row_reduce``): each row holds
   elements of one tensor only;
2. a segment reduction ``[rows] -> [tensors]`` (``segment_reduce``) over the row ->
   tensor ids, which are sorted (tensors own contiguous runs of rows).

Row reduction methods (``method=``; bench/flat_layout.py measures them):

- ``'sum'`` (default): ``jnp.sum(x, axis=1)`` (``jnp.max`` for max-abs). XLA's CPU
  backend (jax 0.10) compiles it, with the ``x*x`` before it, into one library reduction
  kernel that reads the buffer once and needs no scratch: the fastest of the three in
  the SimCLR step on ResNet-50 shapes (bench/flat_layout.py --alternatives);
- ``'halves'``: ``x[:, :w/2] + x[:, w/2:]``, halving until one column is left (pairwise
  summation within a row): plain elementwise ops, but XLA splits them into two loop
  kernels with a ``[rows, 16]`` intermediate (12.5% of the buffer as scratch);
- ``'dot'``: a dot product per row: ``sum(x*x)`` as ``x . x`` (a batched
  ``dot_general``: no ``x*x`` buffer), other sums as ``x @ ones(width)``.

Padding elements (the tail of a tensor's last row, and whole rows after the last
tensor) are masked out when ``valid`` (the number of valid columns in each row) is
given, so a norm never depends on what the padding holds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, choices

ROW_METHODS = ("sum", "halves", "dot")


def check_width(width, method: str = "sum") -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ConfigError(f"FlatLayout: width={width!r} must be an int >= 1")
    if method == "halves" and width & (width - 1):
        raise ConfigError(f"FlatLayout: width={width} must be a power of two for the "
                          "'halves' row reduction (e.g. 128)")
    return int(width)


def _halves(x, op):
    while x.shape[1] > 1:
        half = x.shape[1] // 2
        x = op(x[:, :half], x[:, half:])
    return x[:, 0]


def row_reduce(x, kind: str = "sum", *, method: str = "sum", valid=None):
    """``[rows, width] -> [rows]``: per row, ``'sum'`` of ``x`` or ``'max'`` of ``x``.

    ``valid``: per row, how many leading columns hold data (the others count as 0);
    None when the padding is known to be 0.
    """
    if method not in ROW_METHODS:
        raise ConfigError(f"row reduction method={method!r}; choose from "
                          f"{choices(ROW_METHODS)}")
    if valid is not None:
        cols = jax.lax.broadcasted_iota(jnp.int32, x.shape, 1)
        x = jnp.where(cols < jnp.asarray(valid)[:, None], x, jnp.zeros((), x.dtype))
    if kind == "max":
        if method == "halves":
            return _halves(x, jnp.maximum)
        return jnp.max(x, axis=1, initial=0)
    if method == "halves":
        return _halves(x, jnp.add)
    if method == "dot":
        return jnp.dot(x, jnp.ones((x.shape[1],), x.dtype),
                       precision=jax.lax.Precision.HIGHEST)
    return jnp.sum(x, axis=1)


def row_sum_squares(x, *, method: str = "sum", valid=None):
    """``[rows, width] -> [rows]``: per row, ``sum(x*x)`` (see ``row_reduce``)."""
    if method != "dot":
        return row_reduce(x * x, "sum", method=method, valid=valid)
    if valid is not None:
        cols = jax.lax.broadcasted_iota(jnp.int32, x.shape, 1)
        x = jnp.where(cols < jnp.asarray(valid)[:, None], x, jnp.zeros((), x.dtype))
    return jax.lax.dot_general(x, x, (((1,), (1,)), ((0,), (0,))),
                               precision=jax.lax.Precision.HIGHEST)


def segment_reduce(row_values, segment_ids, num_segments: int, kind: str = "sum"):
    """``[rows] -> [num_segments]``: per tensor, the sum (or max) of its rows' values.

    ``segment_ids`` are sorted; rows with an id >= ``num_segments`` (trailing padding rows)
    are dropped. A tensor without rows (zero size) gets 0.
    """
    if kind == "max":
        out = jax.ops.segment_max(row_values, segment_ids, num_segments,
                                  indices_are_sorted=True)
        return jnp.maximum(out, jnp.zeros((), out.dtype))  # empty segments: -inf -> 0
    return jax.ops.segment_sum(row_values, segment_ids, num_segments, indices_are_sorted=True)


def elementwise_power(x, ord):
    """What a p-norm sums: ``x*x`` (2), ``|x|`` (1), ``|x|**p``; ``|x|`` for max (inf)."""
    if ord == 2:
        return x * x
    a = jnp.abs(x)
    if ord == 1 or ord == float("inf"):
        return a
    return a ** ord


def finish_norm(reduced, ord):
    """A p-norm from the reduction ``elementwise_power`` fed (the sum, or the max)."""
    if ord == 2:
        return jnp.sqrt(reduced)
    if ord == 1 or ord == float("inf"):
        return reduced
    return reduced ** (1.0 / ord)


def norm_of(values, ord):
    """The p-norm of a vector (torch ``clip_grad_norm_``'s norm of the per-tensor norms)."""
    if ord == float("inf"):
        return jnp.max(values, initial=0.0)
    return finish_norm(jnp.sum(elementwise_power(values, ord)), ord)
