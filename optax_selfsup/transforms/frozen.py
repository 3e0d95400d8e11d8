"""Frozen layers: leaves without a gradient until an iteration (``frozen_layers_cfg``).

Upstream (MMSelfSup ``DistOptimizerHook``): at an update at iteration
``it < n``, every parameter whose name contains the substring gets
``p.grad = None``: the optimizer skips it entirely and the clip norm leaves it
out. Here that is a traced ``grad_mask`` handed inward; its schedules keep
running on the global clock. Zeroing the gradient instead would still apply
weight decay, momentum and LARS scaling to it.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..layout import Flat, is_flat
from ..pytrees import per_leaf, unbox
from .in_place import update_and_apply, with_in_place


def frozen_until(names, frozen_layers_cfg: dict, where: str = "frozen_layers_cfg") -> list[int]:
    """Per leaf: the iteration before which it is frozen (0 = never).

    A key that is a substring of no name freezes nothing (upstream says nothing): it is
    reported with a warning naming it (``where`` names the config key)."""
    unmatched = [sub for sub in frozen_layers_cfg if not any(sub in name for name in names)]
    if unmatched:
        close = {sub: difflib.get_close_matches(sub, names, n=1, cutoff=0.5)
                 for sub in unmatched}
        hints = "".join(f"; for {sub!r} did you mean {c[0]!r}?" for sub, c in close.items()
                        if c)
        warnings.warn(
            f"{where}: key(s) {', '.join(map(repr, unmatched))} are a substring of no "
            f"parameter name, so they freeze nothing (upstream silently does the same){hints}"
            f" Names are torch-style, e.g. {', '.join(map(repr, list(names)[:3]))}; "
            "oss.describe lists them all", UserWarning, stacklevel=3)
    return [max([n for sub, n in frozen_layers_cfg.items() if sub in name], default=0)
            for name in names]


def _masked_flat(updates, until, iteration, grad_mask):
    """The flat layout's gradients with frozen tensors' rows zeroed, and the ``[n]`` mask
    (layout order)."""
    layout = updates.layout
    limits = per_leaf(unbox(until), layout.treedef, "until", where="skip_frozen")
    limits = np.asarray([int(limits[i]) for i in layout.order])
    mask = (jnp.asarray(limits) == 0) | (iteration >= jnp.asarray(limits))
    if grad_mask is not None:
        mask = mask & grad_mask
    rows = layout.per_row(mask)
    updates = Flat(layout, {k: jnp.where(rows[k], g, jnp.zeros((), g.dtype))
                            for k, g in updates.items()})
    return updates, mask


class SkipFrozenState(NamedTuple):
    count: jax.Array  # calls seen: the clock when none is handed in
    inner: Any


def skip_frozen(inner: optax.GradientTransformation,
                until) -> optax.GradientTransformationExtraArgs:
    """Drop the gradient of leaf ``i`` (and skip it in ``inner``) while ``it < until[i]``.

    ``until``: a pytree shaped like the params of ints, 0 for never-frozen leaves.
    ``it`` is the global iteration handed in by ``oss.clocked`` or, standing alone,
    this wrapper's own count of calls.
    """
    inner = optax.with_extra_args_support(inner)

    def init(params):
        return SkipFrozenState(jnp.zeros((), jnp.int32), inner.init(params))

    def masked(updates, state, iteration, grad_mask):
        """(it, the gradients with frozen leaves zeroed, the per-leaf mask)."""
        iteration = state.count if iteration is None else iteration
        if is_flat(updates):
            return (iteration, *_masked_flat(updates, until, iteration, grad_mask))
        leaves, treedef = jax.tree.flatten(updates)
        limits = per_leaf(unbox(until), treedef, "until", where="skip_frozen")
        incoming = [None] * len(leaves) if grad_mask is None else treedef.flatten_up_to(grad_mask)
        masks = []
        for n, m in zip(limits, incoming):
            own = jnp.asarray(True) if n == 0 else iteration >= n
            masks.append(own if m is None else own & m)
        mask = jax.tree.unflatten(treedef, masks)
        updates = jax.tree.map(lambda g, m: jnp.where(m, g, jnp.zeros_like(g)), updates, mask)
        return iteration, updates, mask

    def update(updates, state, params=None, *, iteration=None, grad_mask=None, **extra):
        iteration, updates, mask = masked(updates, state, iteration, grad_mask)
        updates, inner_state = inner.update(updates, state.inner, params, iteration=iteration,
                                            grad_mask=mask, **extra)
        return updates, SkipFrozenState(state.count + 1, inner_state)

    def apply(grads, state, params, *, iteration=None, grad_mask=None, **extra):
        iteration, grads, mask = masked(grads, state, iteration, grad_mask)
        params, inner_state = update_and_apply(inner, grads, state.inner, params,
                                               iteration=iteration, grad_mask=mask, **extra)
        return params, SkipFrozenState(state.count + 1, inner_state)

    return with_in_place(optax.GradientTransformationExtraArgs(init, update), apply)
