"""``Flat``: the buffers of a ``FlatLayout`` as one pytree node.

A ``Flat`` holds one ``[rows, width]`` array per dtype (keyed by the dtype's name, in the
layout's order) and carries its layout as static data, so it goes through ``jax.jit``,
``jax.grad``, ``optax`` (``jax.tree.map`` over the buffers), ``jax.device_put`` with
shardings and orbax (each buffer's key path is ``['float32']``, ...) like any pytree, and
two ``Flat`` of equal layouts have equal tree structures.
"""

from __future__ import annotations

import jax
from jax.tree_util import DictKey


class Flat:
    """One buffer per dtype of ``layout`` (``flat['float32']``, ``flat.buffers``)."""

    __slots__ = ("layout", "_buffers")

    def __init__(self, layout, buffers):
        if isinstance(buffers, dict):
            missing = [k for k in layout.keys if k not in buffers]
            extra = [k for k in buffers if k not in layout.keys]
            if missing or extra:
                raise ValueError(f"Flat: the layout's buffers are {list(layout.keys)}; "
                                 f"missing {missing}, unexpected {extra}")
            buffers = tuple(buffers[k] for k in layout.keys)
        buffers = tuple(buffers)
        if len(buffers) != len(layout.keys):
            raise ValueError(f"Flat: {len(buffers)} buffers for a layout of "
                             f"{len(layout.keys)} ({list(layout.keys)})")
        self.layout = layout
        self._buffers = buffers

    @property
    def buffers(self) -> dict:
        return dict(zip(self.layout.keys, self._buffers))

    def __getitem__(self, key):
        return self._buffers[self.layout.keys.index(key)]

    def __iter__(self):
        return iter(self.layout.keys)

    def __len__(self):
        return len(self._buffers)

    def items(self):
        return zip(self.layout.keys, self._buffers)

    def values(self):
        return iter(self._buffers)

    def replace(self, **buffers) -> Flat:
        """A ``Flat`` with some buffers replaced (by dtype key)."""
        return Flat(self.layout, {**self.buffers, **buffers})

    def __repr__(self):
        inner = ", ".join(f"{k}: {getattr(v, 'shape', v)}" for k, v in self.items())
        return f"Flat({len(self.layout.names)} tensors; {inner})"


def _flatten_with_keys(flat: Flat):
    return tuple((DictKey(k), v) for k, v in flat.items()), flat.layout


def _flatten(flat: Flat):
    return flat._buffers, flat.layout


def _unflatten(layout, buffers):
    obj = object.__new__(Flat)
    obj.layout = layout
    obj._buffers = tuple(buffers)
    return obj


jax.tree_util.register_pytree_with_keys(Flat, _flatten_with_keys, _unflatten, _flatten)


def is_flat(x) -> bool:
    return isinstance(x, Flat)
