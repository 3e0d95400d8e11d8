"""Does a checkpoint's tree fit a template? Layouts of live, raw and orbax-metadata trees.

``check_compatible(template, tree)`` compares the optax_selfsup state types, the
optimizer slot names, the leaf paths, shapes and dtypes of two trees (a live
tree, a raw one of nested dicts / lists, or orbax metadata) and raises
``CheckpointMismatch`` naming what differs; ``state_from_raw`` gives a raw tree
its template's NamedTuples back after that check.
"""

from __future__ import annotations

import numpy as np

from ..layout import is_flat
from ..pytrees import unbox
from ..transforms.accumulate import AccumulateState, LossDivisorState
from ..transforms.clip import ClipState
from ..transforms.clocked import ClockedState
from ..transforms.flat_optimizer import FlatOptimizerState, LayoutRef
from ..transforms.frozen import SkipFrozenState
from ..transforms.loss_scale import LossScaleState
from ..transforms.torch_optimizer import TorchOptimizerState
from .errors import CheckpointMismatch

# what each optax_selfsup state holds, in the words of a refusal message
STATE_KINDS = {
    ClockedState: "a global iteration clock",
    AccumulateState: "an accumulation buffer (optimizer_config.update_interval)",
    LossDivisorState: "the divisor of the next loss (fp16 with accumulation: "
                      "oss.loss_scale is the scale / k)",
    SkipFrozenState: "frozen-layer bookkeeping (optimizer_config.frozen_layers_cfg)",
    LossScaleState: "a loss scale (fp16)",
    ClipState: "a gradient-clipping norm (optimizer_config.grad_clip)",
    TorchOptimizerState: "optimizer slots",
    FlatOptimizerState: "optimizer slots on the flat layout (build_optimizer(layout='flat'); "
                        "oss.convert_state moves a state between the layouts)",
}
_BY_FIELDS = {frozenset(cls._fields): cls.__name__ for cls in STATE_KINDS}
_KIND = {cls.__name__: text for cls, text in STATE_KINDS.items()}
_SHOWN = 5  # differing paths named per kind of difference


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _leaf_spec(x) -> tuple:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None or dtype is None:
        x = np.asarray(x)
        shape, dtype = x.shape, x.dtype
    return tuple(int(d) for d in shape), np.dtype(dtype).name


def layout(tree) -> tuple[dict, dict]:
    """``({path: (shape, dtype name)}, {path: state type name})`` of a live, raw or
    metadata tree, paths in the state-dict form (NamedTuple fields and sequence
    indices as keys, joined by '.'). Raw dicts are recognised as optax_selfsup
    states by their field names."""
    tree = getattr(tree, "tree", tree)  # orbax TreeMetadata
    leaves: dict = {}
    types: dict = {}

    def walk(x, path):
        if x is None or isinstance(x, LayoutRef):  # a LayoutRef is static: no leaves
            return
        if is_flat(x):
            items = list(x.items())
        elif _is_namedtuple(x):
            types[path] = type(x).__name__
            items = [(f, getattr(x, f)) for f in x._fields]
        elif isinstance(x, dict):
            if frozenset(map(str, x)) in _BY_FIELDS:
                types[path] = _BY_FIELDS[frozenset(map(str, x))]
            items = list(x.items())
        elif isinstance(x, (list, tuple)):
            items = list(enumerate(x))
        else:
            leaves[path] = _leaf_spec(x)
            return
        for key, value in items:
            walk(value, f"{path}.{key}" if path else str(key))

    walk(unbox(tree), "")
    return leaves, types


def _spec_text(spec) -> str:
    shape, dtype = spec
    return f"{dtype}[{','.join(map(str, shape))}]"


def slot_names(leaves: dict, types: dict) -> set:
    """The per-parameter slot names (torch's state names) under every optimizer state."""
    names = set()
    for root, name in types.items():
        if name not in (TorchOptimizerState.__name__, FlatOptimizerState.__name__):
            continue
        prefix = f"{root}.slots." if root else "slots."
        if name == FlatOptimizerState.__name__:  # slots.<name>.<dtype>
            names |= {p[len(prefix):].split(".", 1)[0] for p in leaves if p.startswith(prefix)}
        else:
            names |= {p.rsplit(".", 1)[-1] for p in leaves if p.startswith(prefix)}
    return names


def _differences(ours: tuple, theirs: tuple, what: str) -> list[str]:
    (our_leaves, our_types), (their_leaves, their_types) = ours, theirs
    mine = "the params template" if what == "params" else f"this {what}"
    lines = []
    ours_t, theirs_t = set(our_types.values()), set(their_types.values())
    for name in sorted(theirs_t - ours_t):
        lines.append(f"the checkpoint's {what} has {_KIND.get(name, name)} ({name}); "
                     f"{mine} has none")
    for name in sorted(ours_t - theirs_t):
        lines.append(f"{mine} has {_KIND.get(name, name)} ({name}); "
                     f"the checkpoint's has none")
    ours_s, theirs_s = slot_names(our_leaves, our_types), slot_names(their_leaves, their_types)
    if ours_s != theirs_s:
        lines.append(f"the checkpoint's optimizer keeps {', '.join(sorted(theirs_s)) or 'no'} "
                     f"slots per parameter; this one keeps {', '.join(sorted(ours_s)) or 'none'} "
                     "(another optimizer type or momentum setting)")
    missing = [p for p in our_leaves if p not in their_leaves]
    extra = [p for p in their_leaves if p not in our_leaves]
    if missing:
        lines.append(f"{len(missing)} path(s) of {mine} are not in the checkpoint: "
                     + ", ".join(missing[:_SHOWN]) + (", ..." if len(missing) > _SHOWN else ""))
    if extra:
        lines.append(f"{len(extra)} path(s) in the checkpoint are not in {mine}: "
                     + ", ".join(extra[:_SHOWN]) + (", ..." if len(extra) > _SHOWN else ""))
    changed = [p for p in our_leaves if p in their_leaves and our_leaves[p] != their_leaves[p]]
    for p in changed[:_SHOWN]:
        lines.append(f"{p}: checkpoint {_spec_text(their_leaves[p])}, "
                     f"{mine} {_spec_text(our_leaves[p])}")
    if len(changed) > _SHOWN:
        lines.append(f"... and {len(changed) - _SHOWN} more leaves with another shape or dtype")
    return lines


def check_compatible(template, restored_or_metadata, *, what: str = "optimizer state",
                     source: str = "the checkpoint") -> None:
    """Raise ``CheckpointMismatch`` unless both trees have the same state types, slot
    names, paths, shapes and dtypes. ``restored_or_metadata``: a live tree, a raw one
    (nested dicts / lists) or orbax metadata (``CheckpointManager.item_metadata``)."""
    lines = _differences(layout(template), layout(restored_or_metadata), what)
    if lines:
        raise CheckpointMismatch(f"{source} does not fit: its {what} belongs to another "
                                 "config or parameter tree; refusing to load it:\n  - "
                                 + "\n  - ".join(lines))


def _as_state_dict(raw, template):
    """Lists in ``raw`` where the template has tuples -> flax's {'0': ...} dicts."""
    if _is_namedtuple(template) or isinstance(template, dict):
        keys = template._fields if _is_namedtuple(template) else template.keys()
        get = (lambda k: getattr(template, k)) if _is_namedtuple(template) else template.get
        return {str(k): _as_state_dict(raw[str(k)] if str(k) in raw else raw[k], get(k))
                for k in keys} if isinstance(raw, dict) else raw
    if isinstance(template, (list, tuple)) and isinstance(raw, (list, tuple, dict)):
        items = raw if isinstance(raw, (list, tuple)) else [raw[str(i)] for i in range(len(raw))]
        return {str(i): _as_state_dict(r, t) for i, (r, t) in enumerate(zip(items, template))}
    return raw


def state_from_raw(template, raw):
    """A raw tree (orbax restored without a target, ``flax.serialization.to_state_dict``,
    ``msgpack_restore``) in ``template``'s structure and types, after ``check_compatible``.
    Equivalent to ``flax.serialization.from_state_dict(template, raw)`` except that orbax's
    lists (optax.chain tuples) are accepted too."""
    from flax import serialization

    check_compatible(template, raw, source="the raw tree")
    return serialization.from_state_dict(template, _as_state_dict(raw, template))
