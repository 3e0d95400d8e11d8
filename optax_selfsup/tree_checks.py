"""Gradients and params against the tree an optimizer was built for: one-line errors.

JAX maps a gradient tree onto the params without asking what it is: a missing
or extra leaf or another container reads "Dict key mismatch" (never saying it
is the gradients), and a gradient of another shape is broadcast (a ``(2, 2)``
gradient turns a ``(2,)`` parameter into ``(2, 2)``; a scalar is applied to
every entry). torch refuses both when ``.grad`` is assigned. These checks run
when the update is traced (shapes and dtypes are static: no cost per step) and
name the tree, the first differing key path and what was expected.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ConfigError
from .pytrees import unbox


def _key(entry) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _where(path) -> str:
    return repr(".".join(_key(k) for k in path)) if path else "the root"


def _children(node):
    """A node's ``[(key, child)]`` one level down, or None for a leaf (None: no children)."""
    if node is None:
        return []
    items, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if jax.tree_util.treedef_is_leaf(treedef):
        return None
    return [(path[0], child) for path, child in items]


def _kind(node, leaf: str | None = None) -> str:
    """What ``node`` is, short: 'a float32[2, 3] array', "a dict with keys 'a', 'b'"."""
    if node is None:
        return "None"
    children = _children(node)
    if children is None:
        if leaf is not None:
            return leaf
        shape, dtype = np.shape(node), getattr(node, "dtype", None)
        if dtype is None:
            return f"a {type(node).__name__} ({_short(node)})"
        return f"a {np.dtype(dtype).name}[{', '.join(map(str, shape))}] array"
    if children and all(isinstance(k, jax.tree_util.SequenceKey) for k, _ in children):
        return f"a {type(node).__name__} of {len(children)}"
    keys = [_key(k) for k, _ in children]
    shown = ", ".join(map(repr, keys[:4])) + (", ..." if len(keys) > 4 else "")
    return f"a {type(node).__name__} with {'keys ' + shown if keys else 'no entries'}"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _difference(given, expected, path=(), leaf=None):
    """The first place where ``given``'s structure differs from ``expected``'s:
    ``(path, what given has, what expected has)``, or None where they agree."""
    a, b = _children(given), _children(expected)
    if a is None and b is None:
        return None
    if a is None or b is None or type(given) is not type(expected):
        return path, _kind(given), _kind(expected, leaf)
    keys_a, keys_b = [k for k, _ in a], [k for k, _ in b]
    if keys_a != keys_b:
        by_key_a, by_key_b = dict(a), dict(b)
        for k in keys_b:
            if k not in by_key_a:
                return path + (k,), "nothing", _kind(by_key_b[k], leaf)
        for k in keys_a:
            if k not in by_key_b:
                return path + (k,), _kind(by_key_a[k]), "nothing"
        return path, f"the keys in the order {keys_a}", f"{keys_b}"
    for (k, x), (_, y) in zip(a, b):
        found = _difference(x, y, path + (k,), leaf)
        if found is not None:
            return found
    if jax.tree.structure(given) != jax.tree.structure(expected):  # node metadata
        return path, f"{jax.tree.structure(given)}", f"{jax.tree.structure(expected)}"
    return None


def _dtype(x):
    """``x``'s dtype as JAX computes with it (float64 is float32 without x64)."""
    return jax.dtypes.canonicalize_dtype(x.dtype if hasattr(x, "dtype") else np.result_type(x))


def check_structure(tree, expected, what: str, expected_what: str) -> None:
    """Refuse ``tree`` unless it has ``expected``'s tree structure (``expected``: a tree
    or a ``PyTreeDef``), naming the first differing key path. ``what`` / ``expected_what``
    name both in the message, e.g. 'SGD.update: the gradients', 'the params'."""
    tree = unbox(tree)
    leaf = None
    if isinstance(expected, jax.tree_util.PyTreeDef):
        treedef, leaf = expected, "a leaf"
        expected = treedef.unflatten([0] * treedef.num_leaves)
    else:
        expected = unbox(expected)
        treedef = jax.tree.structure(expected)
    if jax.tree.structure(tree) == treedef:
        return
    found = _difference(tree, expected, leaf=leaf)
    if found is None:  # pragma: no cover - structures differ, so some node does
        found = ((), str(jax.tree.structure(tree)), str(treedef))
    path, got, want = found
    if got == "nothing":
        why = f"they have no {_where(path)} ({expected_what} have {want} there)"
    elif want == "nothing":
        why = f"they have an extra {_where(path)} ({got}) that {expected_what} do not have"
    else:
        why = f"at {_where(path)} they have {got} where {expected_what} have {want}"
    raise ConfigError(f"{what} do not match the tree of {expected_what}: {why}")


def check_gradients(grads, params, what: str, dtypes: bool = True) -> None:
    """Refuse gradients whose tree, shapes or (``dtypes``) dtypes do not fit ``params``.

    A gradient's dtype must cast to its parameter's without widening it (JAX's
    promotion: an int or a narrower float is fine; float64 for a float32 parameter,
    float32 for a float16 one and complex for a real one are not): torch refuses a
    ``.grad`` of another dtype than the parameter's.
    """
    check_structure(grads, params, f"{what}: the gradients (updates)", "the params")
    paths = jax.tree_util.tree_flatten_with_path(unbox(params))[0]
    for (path, p), g in zip(paths, jax.tree.leaves(unbox(grads))):
        gs, ps = np.shape(g), np.shape(p)
        if gs != ps:
            raise ConfigError(
                f"{what}: the gradient for {_where(path)} has shape {gs} but the parameter "
                f"has shape {ps}; a gradient must have its parameter's shape (JAX would "
                "broadcast it, changing the parameter's shape or applying one value to "
                "every entry)")
        if not dtypes:
            continue
        gd, pd = _dtype(g), _dtype(p)
        if jnp.promote_types(gd, pd) != pd:
            raise ConfigError(
                f"{what}: the gradient for {_where(path)} is {np.dtype(gd).name} but the "
                f"parameter is {np.dtype(pd).name}; the gradient cannot be cast to the "
                f"parameter's dtype without loss (torch refuses a .grad of another dtype): "
                f"cast it, e.g. jax.tree.map(lambda g, p: g.astype(p.dtype), grads, params)")
