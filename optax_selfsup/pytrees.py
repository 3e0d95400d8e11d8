"""Parameter trees as users hold them: Flax boxes unwrapped, per-leaf values read.

Flax NNX keeps parameters in ``nnx.Variable`` boxes (``nnx.state(model, nnx.Param)``;
the key path of a leaf then ends in ``.value``) and ``nnx.Optimizer`` calls
``init`` on such a tree but ``update`` on plain arrays; Linen may box them in
``nn.Partitioned``. ``unbox`` turns all of these into plain arrays, so names,
per-leaf hyperparameters and the optimizer state do not depend on the boxes.

A hyperparameter is given once for all leaves (a number, a 0-d array, a
schedule ``count -> value``, or a tuple such as ``betas``) or per leaf, as a
pytree shaped like the params (``per_leaf``).
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

from .errors import ConfigError


def _box_types() -> tuple:
    types = []
    try:
        from flax import nnx

        types.append(nnx.Variable)
    except ImportError:  # pragma: no cover - flax is a dependency
        pass
    try:
        from flax.core import meta

        types.append(meta.AxisMetadata)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


_BOXES = None


def is_box(x) -> bool:
    global _BOXES
    if _BOXES is None:
        _BOXES = _box_types()
    return isinstance(x, _BOXES)


def _unbox_one(x):
    if hasattr(x, "get_value"):
        return x.get_value()
    return x.unbox()


def unbox(tree):
    """``tree`` with every Flax ``nnx.Variable`` / Linen ``AxisMetadata`` box replaced by
    its value (the tree's other nodes, e.g. an ``nnx.State``, are kept)."""
    return jax.tree.map(lambda x: _unbox_one(x) if is_box(x) else x, tree, is_leaf=is_box)


def is_one_value(value, default=None) -> bool:
    """Whether ``value`` is given once for every leaf (not a per-leaf pytree)."""
    if isinstance(value, (numbers.Number, str, bytes, type(None))):
        return True
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return True
    if isinstance(value, tuple) and isinstance(default, tuple):
        # betas=(0.9, 0.999), etas, step_sizes; a tuple of tuples is a per-leaf tree
        return not any(isinstance(v, (tuple, list, dict)) for v in value)
    if callable(value) and not isinstance(value, (dict, list, tuple)):
        return not hasattr(value, "keys")  # a schedule, not a mapping
    return False


def per_leaf(value, treedef, key: str, default=None, where: str = "optimizer") -> list:
    """``value`` once per leaf of ``treedef`` (a one-off value repeated, or a pytree
    shaped like the params flattened to the leaves); a pytree of another shape is an
    error naming ``key``, never silently taken as one value."""
    if is_one_value(value, default):
        return [value] * treedef.num_leaves
    value = unbox(value)
    try:
        return treedef.flatten_up_to(value)
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"{where}: {key}={_short(value)} is neither one value (a number or a schedule "
            f"count -> value) nor a pytree shaped like the params ({treedef.num_leaves} "
            f"leaves): {err}") from None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def boxed_like(tree, template):
    """``tree``'s leaves in ``template``'s structure (Flax boxes included): updates are
    returned in the structure the gradients came in."""
    return jax.tree.unflatten(jax.tree.structure(template), jax.tree.leaves(tree))
