"""``FlatLayout``: a params tree as one ``[rows, width]`` buffer per dtype.

Built once from a params tree (arrays or ``jax.ShapeDtypeStruct``; Flax boxes
unwrapped), the layout decides where every tensor lives:

- one buffer per dtype (keys ``'float32'``, ``'bfloat16'``, ...), each viewed as
  ``[rows, width]`` (``width=128`` by default);
- each tensor owns whole rows: its elements in C order from the first column of its
  first row, its last row padded with zeros up to ``width``; a tensor of ``size``
  elements takes ``ceil(size / width)`` rows (a 0-d tensor one row, an empty one none);
- tensors ordered by group (``groups``: a per-leaf pytree of group ids, e.g. the
  param-group index; ints in increasing order, other ids in first-seen order), then by
  leaf order, so each group is a contiguous run of rows;
- ``row_multiple``: each buffer's row count rounded up with trailing zero rows (e.g. the
  number of devices its rows are split across).

The *layout order* numbers the tensors 0..n-1 buffer after buffer, in that order;
per-tensor vectors (``norms``, ``per_row``'s input) are in layout order, and
``per_tensor`` / ``to_tree`` convert from / to per-leaf pytrees. ``names`` are the
leaves' dotted names (``oss.leaf_names``), ``order[i]`` the leaf index of tensor i.

``flatten(tree) -> Flat`` and ``unflatten(flat) -> tree`` are pure jnp: inside a jitted
loss, ``unflatten`` gives the model its tensors as slices of the flat buffer and
``jax.grad`` of the loss with respect to the ``Flat`` returns the flat gradient (one
concatenation, padding 0), so an optimizer on the flat layout never splits or joins.

Reductions per tensor (``sum_squares``, ``norms(ord)``, ``max_abs``, ``total_norm``)
are a row reduction and a sorted segment reduction (``segments.py``); ``per_row``
broadcasts per-tensor values back to ``[rows, 1]``. Padding never enters a
reduction: the rows holding a tensor's padded tail (``tail_rows``, at most one per
tensor) are reduced again with the padding masked (``valid``: each row's count of
valid columns), and trailing padding rows belong to no tensor.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..names import leaf_names
from ..pytrees import unbox
from . import segments
from .buffers import Flat, is_flat


def _dtype_key(dtype) -> str:
    """The buffer key: the dtype JAX gives such a leaf (float64 is float32 without x64)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype)).name


def _group_order(ids) -> list:
    distinct = list(dict.fromkeys(ids))
    if all(isinstance(g, (numbers.Integral, np.integer)) and not isinstance(g, bool)
           for g in distinct):
        return sorted(distinct)
    return distinct


class FlatLayout:
    """Where each tensor of a params tree lives in the flat buffers (see module doc)."""

    def __init__(self, params, *, groups=None, width: int = 128, row_multiple: int = 1,
                 method: str = "sum", masked: bool = True):
        tree = unbox(params)
        leaves, self.treedef = jax.tree.flatten(tree)
        if not leaves:
            raise ConfigError("FlatLayout: the params tree has no leaves")
        self.width = segments.check_width(width, method)
        if isinstance(row_multiple, bool) or not isinstance(row_multiple, (int, np.integer)) \
                or row_multiple < 1:
            raise ConfigError(f"FlatLayout: row_multiple={row_multiple!r} must be an int >= 1")
        if method not in segments.ROW_METHODS:
            raise ConfigError(f"FlatLayout: method={method!r}; choose from "
                              f"{segments.ROW_METHODS}")
        self.row_multiple, self.method, self.masked = int(row_multiple), method, bool(masked)
        names = leaf_names(tree)
        if groups is None:
            gids = [0] * len(leaves)
        else:
            gids = _group_ids(groups, self.treedef, len(leaves))
        gids = [g.item() if isinstance(g, (np.generic, np.ndarray)) else g for g in gids]
        shapes = [tuple(int(d) for d in np.shape(x)) for x in leaves]
        dtypes = [_dtype_key(getattr(x, "dtype", None) or np.result_type(x)) for x in leaves]
        self.keys = tuple(dict.fromkeys(dtypes))  # buffers, in first-seen dtype order
        rank = {g: i for i, g in enumerate(_group_order(gids))}
        self.order = tuple(sorted(range(len(leaves)),
                                  key=lambda i: (self.keys.index(dtypes[i]), rank[gids[i]], i)))
        o = self.order
        self.names = tuple(names[i] for i in o)
        self.shapes = tuple(shapes[i] for i in o)
        self.dtypes = tuple(dtypes[i] for i in o)
        self.groups = tuple(gids[i] for i in o)
        self.sizes = np.asarray([math.prod(s) for s in self.shapes], np.int64)
        self.rows = -(-self.sizes // self.width)
        self.position = np.empty(len(o), np.int64)  # leaf index -> layout index
        self.position[list(o)] = np.arange(len(o))
        self.row_start = np.zeros(len(o), np.int64)  # within the tensor's buffer
        self.tensors, self.buffer_rows = {}, {}  # per key: layout indices [start, stop)
        self.segment_ids, self.valid, self.tail_rows = {}, {}, {}
        start = 0
        for key in self.keys:
            stop = start + self.dtypes.count(key)
            self.tensors[key] = (start, stop)
            rows = self.rows[start:stop]
            self.row_start[start:stop] = np.cumsum(rows) - rows
            used = int(rows.sum())
            total = max(-(-used // self.row_multiple) * self.row_multiple, self.row_multiple)
            self.buffer_rows[key] = total
            seg = np.full(total, len(o), np.int32)  # padding rows: no tensor (dropped)
            seg[:used] = np.repeat(np.arange(start, stop, dtype=np.int32), rows)
            valid = np.zeros(total, np.int32)
            valid[:used] = self.width
            ends = self.row_start[start:stop] + rows - 1
            has = rows > 0
            valid[ends[has]] = self.sizes[start:stop][has] - (rows[has] - 1) * self.width
            self.segment_ids[key], self.valid[key] = seg, valid
            # rows holding a tensor's padded tail (reductions mask them)
            self.tail_rows[key] = np.flatnonzero((valid > 0) & (valid < self.width))
            start = stop
        self._signature = (self.treedef, self.names, self.shapes, self.dtypes, self.groups,
                           self.width, self.row_multiple, self.method, self.masked)
        self._hash = hash(self._signature)

    # identity: tree structures of Flat values compare layouts
    def __eq__(self, other):
        return isinstance(other, FlatLayout) and (other is self or
                                                  other._signature == self._signature)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        rows = ", ".join(f"{k}: [{r}, {self.width}]" for k, r in self.buffer_rows.items())
        return (f"FlatLayout({len(self.names)} tensors, {len(set(self.groups))} groups; {rows}; "
                f"padding {self.padding_fraction:.2%})")

    @property
    def num_tensors(self) -> int:
        return len(self.names)

    @property
    def padding(self) -> int:
        """Padding elements in all buffers (tails of last rows and trailing rows)."""
        return int(sum(r * self.width for r in self.buffer_rows.values()) - self.sizes.sum())

    @property
    def padding_fraction(self) -> float:
        """Padding elements over the parameters' elements."""
        return self.padding / max(int(self.sizes.sum()), 1)

    def _buffer_of(self, key):
        return slice(*self.tensors[key])

    # ---- layout <-> per-tensor tree -------------------------------------------------------
    def abstract(self, dtype=None) -> Flat:
        """The buffers as ``jax.ShapeDtypeStruct`` (orbax restore targets, ``jax.eval_shape``)."""
        return Flat(self, tuple(jax.ShapeDtypeStruct((self.buffer_rows[k], self.width),
                                                     dtype or k) for k in self.keys))

    def zeros(self, dtype=None) -> Flat:
        return Flat(self, tuple(jnp.zeros((self.buffer_rows[k], self.width), dtype or k)
                                for k in self.keys))

    def flatten(self, tree) -> Flat:
        """A per-tensor tree shaped like the layout's params -> its ``Flat`` (padding 0)."""
        leaves = self.treedef.flatten_up_to(unbox(tree))
        out = []
        for key in self.keys:
            start, stop = self.tensors[key]
            pieces = []
            for i in range(start, stop):
                x = leaves[self.order[i]]
                if tuple(np.shape(x)) != self.shapes[i]:
                    raise ValueError(f"FlatLayout.flatten: {self.names[i]!r} has shape "
                                     f"{tuple(np.shape(x))}, the layout {self.shapes[i]}")
                n, r = int(self.sizes[i]), int(self.rows[i])
                x = jnp.ravel(jnp.asarray(x, key))
                if r * self.width != n:
                    x = jnp.pad(x, (0, r * self.width - n))
                pieces.append(x.reshape(r, self.width))
            used = int(self.rows[start:stop].sum())
            if self.buffer_rows[key] > used:
                pieces.append(jnp.zeros((self.buffer_rows[key] - used, self.width), key))
            out.append(jnp.concatenate(pieces) if len(pieces) > 1 else pieces[0])
        return Flat(self, tuple(out))

    def unflatten(self, flat: Flat):
        """``Flat`` -> the per-tensor tree (slices and reshapes; differentiable)."""
        self._check(flat, "unflatten")
        leaves = [None] * self.num_tensors
        for key, buf in flat.items():
            start, stop = self.tensors[key]
            bounds = [int(b) for b in (self.row_start[start:stop] + self.rows[start:stop])]
            pieces = jnp.split(buf, bounds[:-1] + ([bounds[-1]] if bounds[-1] < buf.shape[0]
                                                   else []), axis=0)
            for i, piece in zip(range(start, stop), pieces):
                x = piece.reshape(-1)
                if x.shape[0] != self.sizes[i]:
                    x = x[:int(self.sizes[i])]
                leaves[self.order[i]] = x.reshape(self.shapes[i])
        return jax.tree.unflatten(self.treedef, leaves)

    def flatten_all(self, tree):
        """Every subtree of ``tree`` shaped like the params -> ``Flat`` (e.g. an optimizer
        state's per-leaf slots); other nodes kept."""
        return _map_params_shaped(self, tree, self.flatten)

    def unflatten_all(self, tree):
        """Every ``Flat`` of this layout in ``tree`` -> its per-tensor tree."""
        return jax.tree.map(lambda x: self.unflatten(x) if is_flat(x) and x.layout == self
                            else x, tree, is_leaf=is_flat)

    def _check(self, flat, what):
        if not is_flat(flat):
            raise TypeError(f"FlatLayout.{what}: expected a Flat, got {type(flat).__name__}")
        if flat.layout != self:
            raise ValueError(f"FlatLayout.{what}: the Flat was made by another layout")

    # ---- per-tensor values --------------------------------------------------------------------
    def per_tensor(self, values, dtype=None):
        """A per-leaf pytree (or one value) -> a ``[n]`` vector in layout order."""
        if not isinstance(values, (dict, list, tuple)) and np.ndim(values) == 0 \
                and not hasattr(values, "keys"):
            return jnp.full((self.num_tensors,), values, dtype)
        leaves = self.treedef.flatten_up_to(unbox(values))
        return jnp.stack([jnp.asarray(leaves[i], dtype) for i in self.order])

    def to_tree(self, vector):
        """A ``[n]`` vector in layout order -> a per-leaf pytree of its entries."""
        leaves = [None] * self.num_tensors
        for i, leaf in enumerate(self.order):
            leaves[leaf] = vector[i]
        return jax.tree.unflatten(self.treedef, leaves)

    def per_row(self, values, key=None):
        """Per-tensor ``[n]`` values (layout order) -> ``[rows, 1]`` per buffer (a dict by
        key, or the array of buffer ``key``); trailing padding rows get 0."""
        values = jnp.asarray(values)
        ext = jnp.concatenate([values, jnp.zeros((1,), values.dtype)])
        one = lambda k: jnp.take(ext, jnp.asarray(self.segment_ids[k]), axis=0)[:, None]
        return one(key) if key is not None else {k: one(k) for k in self.keys}

    # ---- per-tensor reductions --------------------------------------------------------------
    def _rows(self, x, fn, kind, valid=None):
        if fn is _SQUARE:
            return segments.row_sum_squares(x, method=self.method, valid=valid)
        return segments.row_reduce(fn(x), kind, method=self.method, valid=valid)

    def _reduce(self, flat, fn, kind, dtype):
        """Per tensor: reduce ``fn(x)`` over its rows. The rows are reduced without a mask;
        then the few rows holding a tensor's padded tail (at most one per tensor) are
        reduced again from a gather, masked, and replace theirs (a mask over the whole
        buffer would cost an extra buffer-sized pass in XLA's CPU reductions). Trailing
        padding rows belong to no tensor and are dropped by the segment reduction."""
        self._check(flat, "reduce")
        out = []
        for key, buf in flat.items():
            start, stop = self.tensors[key]
            x = buf.astype(dtype or jnp.promote_types(buf.dtype, jnp.float32))
            rows = self._rows(x, fn, kind)
            tails = self.tail_rows[key]
            if self.masked and tails.size:
                fixed = self._rows(x[tails], fn, kind, valid=self.valid[key][tails])
                rows = rows.at[tails].set(fixed, indices_are_sorted=True, unique_indices=True)
            seg = jnp.asarray(self.segment_ids[key]) - start
            out.append(segments.segment_reduce(rows, seg, stop - start, kind))
        if len(out) == 1:
            return out[0]
        common = jnp.result_type(*out)
        return jnp.concatenate([o.astype(common) for o in out])

    def sum_squares(self, flat, dtype=None):
        """Per tensor ``sum(x**2)`` ([n], layout order), in at least float32."""
        return self._reduce(flat, _SQUARE, "sum", dtype)

    def sums(self, flat, dtype=None):
        """Per tensor ``sum(x)``."""
        return self._reduce(flat, lambda x: x, "sum", dtype)

    def max_abs(self, flat, dtype=None):
        """Per tensor ``max(|x|)`` (0 for an empty tensor)."""
        return self._reduce(flat, jnp.abs, "max", dtype)

    def norms(self, flat, ord=2.0, dtype=None):
        """Per tensor p-norm (``ord``: 2, 1, inf or any p > 0) of the flattened tensor."""
        ord = float(ord)
        if not ord > 0:
            raise ConfigError(f"FlatLayout.norms: ord={ord} must be > 0 or inf")
        kind = "max" if ord == float("inf") else "sum"
        power = _SQUARE if ord == 2 else lambda x: segments.elementwise_power(x, ord)
        reduced = self._reduce(flat, power, kind, dtype)
        return segments.finish_norm(reduced, ord)

    def total_norm(self, flat, ord=2.0, mask=None, dtype=None):
        """torch ``clip_grad_norm_``'s total: the p-norm of the per-tensor p-norms (tensors
        whose ``mask`` entry, ``[n]`` in layout order, is False left out)."""
        norms = self.norms(flat, ord, dtype)
        if mask is not None:
            norms = jnp.where(mask, norms, jnp.zeros((), norms.dtype))
        return segments.norm_of(norms, float(ord))


def _SQUARE(x):
    return x * x


def _group_ids(groups, treedef, n) -> list:
    """Per leaf, its group id: from a pytree shaped like the params, or a list in leaf order."""
    try:
        return treedef.flatten_up_to(unbox(groups))
    except (ValueError, TypeError) as err:
        if isinstance(groups, (list, np.ndarray)) and len(groups) == n:
            return list(groups)
        raise ConfigError(f"FlatLayout: groups must be a pytree shaped like the params ({n} "
                          f"leaves) or a list of {n} ids in leaf order: {err}") from None


def _map_params_shaped(layout, tree, fn):
    def is_params(x):
        try:
            return jax.tree.structure(unbox(x)) == layout.treedef
        except Exception:  # noqa: BLE001 - any node that is not the params' structure
            return False

    return jax.tree.map(lambda x: fn(x) if is_params(x) else x, tree, is_leaf=is_params)
