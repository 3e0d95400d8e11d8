"""Gradient clipping with torch ``clip_grad_norm_`` semantics (mmcv ``grad_clip``).

``total`` is the p-norm of the per-tensor p-norms (``inf``: the largest |g|)
over the leaves that have a gradient (``grad_mask``); ``coef = max_norm /
(total + 1e-6)``; gradients are multiplied by ``min(coef, 1)``. The pre-clip
norm is kept in the state (mmcv logs it as ``grad_norm``), in the gradients' dtype
(float64 under ``jax_enable_x64`` with float64 params, as torch's norm of float64
gradients; float32 for float32 / float16 / bfloat16 ones).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class ClipState(NamedTuple):
    grad_norm: jax.Array  # the pre-clip total norm at the last update


def _norm(g, p):
    a = jnp.abs(g).ravel()
    if p == float("inf"):
        return jnp.max(a, initial=0.0)
    if p == 2:
        return jnp.sqrt(jnp.sum(a * a))
    if p == 1:
        return jnp.sum(a)
    return jnp.sum(a ** p) ** (1.0 / p)


def norm_dtype(leaves):
    """The dtype the total norm is kept in: the leaves' dtypes promoted, at least float32
    (a float16 norm would overflow at 65504)."""
    return jnp.result_type(jnp.float32, *(getattr(x, "dtype", None) or jnp.result_type(x)
                                          for x in leaves))


def clip_coefficient(leaves, masks, max_norm: float, norm_type: float):
    """torch's ``clip_grad_norm_`` numbers: (total norm, ``min(max_norm / (total + 1e-6), 1)``,
    per-leaf norms) over the leaves whose mask is True (None: every leaf)."""
    norms = []
    for g, m in zip(leaves, masks):
        n = _norm(g, norm_type)
        norms.append(n if m is None else jnp.where(m, n, 0.0))
    total = _norm(jnp.stack(norms), norm_type)
    return total, norm_clip_coefficient(total, max_norm), norms


def norm_clip_coefficient(total, max_norm: float):
    """torch's ``clip_grad_norm_`` factor of a total norm: ``min(max_norm / (total + 1e-6), 1)``
    (both layouts use it)."""
    return jnp.minimum(max_norm / (total + 1e-6), 1.0)


def check_clip_arguments(max_norm, norm_type) -> float:
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm={max_norm!r} must be a number > 0")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"grad_clip.norm_type={norm_type} must be > 0 or inf")
    return norm_type


def clip_grad_norm(max_norm: float,
                   norm_type: float = 2.0) -> optax.GradientTransformationExtraArgs:
    """torch ``clip_grad_norm_(params, max_norm, norm_type)`` on the gradients."""
    norm_type = check_clip_arguments(max_norm, norm_type)

    def init(params):
        return ClipState(jnp.zeros((), norm_dtype(jax.tree.leaves(params))))

    def update(updates, state, params=None, *, grad_mask=None, **extra):
        del params, extra
        leaves, treedef = jax.tree.flatten(updates)
        masks = [None] * len(leaves) if grad_mask is None else treedef.flatten_up_to(grad_mask)
        if not leaves:
            return updates, state
        total, coef, _ = clip_coefficient(leaves, masks, max_norm, norm_type)
        clipped = jax.tree.map(lambda g: g * coef.astype(g.dtype), updates)
        return clipped, ClipState(total.astype(state.grad_norm.dtype))

    return optax.GradientTransformationExtraArgs(init, update)
