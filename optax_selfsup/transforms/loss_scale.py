"""Loss scaling for float16 training (MMSelfSup ``GradAccumFp16OptimizerHook``).

torch ``GradScaler`` semantics: the loss is multiplied by ``scale`` (read it
with ``oss.loss_scale(opt_state)``); this transformation multiplies the
gradients by ``1/scale``; if any gradient of a leaf that has one is not
finite, the update is skipped (params and optimizer state untouched) and
``scale *= backoff_factor``; after ``growth_interval`` finite updates in a row,
``scale *= growth_factor``. A fixed ``loss_scale=X`` is
``init_scale=X, growth_factor=1, backoff_factor=1``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..layout import is_flat
from .in_place import with_in_place
from .select import apply_if, update_if


class LossScaleState(NamedTuple):
    scale: jax.Array
    growth_tracker: jax.Array
    finite: jax.Array  # the last update's gradients were finite (it was applied)
    inner: Any


def dynamic_loss_scale(inner: optax.GradientTransformation, init_scale: float = 2.0**16,
                       growth_factor: float = 2.0, backoff_factor: float = 0.5,
                       growth_interval: int = 2000) -> optax.GradientTransformationExtraArgs:
    for name, value, ok in (("init_scale", init_scale, init_scale > 0),
                            ("growth_factor", growth_factor, growth_factor >= 1),
                            ("backoff_factor", backoff_factor, 0 < backoff_factor <= 1),
                            ("growth_interval", growth_interval, growth_interval >= 1)):
        if not ok:
            raise ValueError(f"dynamic_loss_scale: {name}={value!r} is out of range "
                             "(init_scale > 0, growth_factor >= 1, 0 < backoff_factor <= 1, "
                             "growth_interval >= 1)")
    inner = optax.with_extra_args_support(inner)

    def init(params):
        return LossScaleState(jnp.asarray(init_scale, jnp.float32), jnp.zeros((), jnp.int32),
                              jnp.ones((), bool), inner.init(params))

    def unscaled(updates, state, grad_mask):
        """The gradients divided by the scale, and whether all that count are finite."""
        inv = (1.0 / state.scale).astype(jnp.float32)
        updates = jax.tree.map(lambda g: g * inv.astype(g.dtype), updates)
        leaves, treedef = jax.tree.flatten(updates)
        if is_flat(updates) and grad_mask is not None:  # a [n] vector: per row
            rows = updates.layout.per_row(grad_mask)
            masks = [rows[k] for k in updates.layout.keys]
        else:
            masks = [None] * len(leaves) if grad_mask is None else \
                treedef.flatten_up_to(grad_mask)
        finite = jnp.asarray(True)
        for g, m in zip(leaves, masks):
            if m is not None and jnp.ndim(m):  # per row (the flat layout)
                finite = finite & jnp.all(jnp.isfinite(g) | ~m)
                continue
            ok = jnp.all(jnp.isfinite(g))
            finite = finite & (ok if m is None else (ok | ~m))
        return updates, finite

    def next_state(state, finite, inner_state):
        tracker = jnp.where(finite, state.growth_tracker + 1, 0)
        grow = tracker == growth_interval
        scale = jnp.where(finite, jnp.where(grow, state.scale * growth_factor, state.scale),
                          state.scale * backoff_factor)
        tracker = jnp.where(grow, 0, tracker)
        return LossScaleState(scale.astype(jnp.float32), tracker, finite, inner_state)

    def update(updates, state, params=None, *, grad_mask=None, hparams_only=False, **extra):
        if hparams_only:  # see select.update_if
            _, inner_state = inner.update(updates, state.inner, params, grad_mask=grad_mask,
                                          hparams_only=True, **extra)
            return updates, state._replace(inner=inner_state)
        updates, finite = unscaled(updates, state, grad_mask)
        out, inner_state = update_if(finite, inner, updates, state.inner, params,
                                     grad_mask=grad_mask, **extra)
        new_updates = jax.tree.map(lambda o: jnp.where(finite, o, jnp.zeros_like(o)), out)
        return new_updates, next_state(state, finite, inner_state)

    def apply(grads, state, params, *, grad_mask=None, **extra):
        grads, finite = unscaled(grads, state, grad_mask)
        params, inner_state = apply_if(finite, inner, grads, state.inner, params,
                                       grad_mask=grad_mask, **extra)
        return params, next_state(state, finite, inner_state)

    return with_in_place(optax.GradientTransformationExtraArgs(init, update), apply)
