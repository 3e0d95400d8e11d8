"""Loss scaling for float16 training (MMSelfSup ``GradAccumFp16OptimizerHook``).

torch ``GradScaler`` semantics: the loss is multiplied by ``scale`` (read it
with ``oss.loss_scale(opt_state)``); this transformation multiplies the
gradients by ``1/scale``; if any gradient of a leaf that has one is not
finite, the update is skipped (params and optimizer state untouched) and
``scale *= backoff_factor``; after ``growth_interval`` finite updates in a row,
``scale *= growth_factor``, unless that would make it inf (then it stays). A
fixed ``loss_scale=X`` is ``init_scale=X, growth_factor=1, backoff_factor=1``.

The scale is a float32 number, as torch keeps it. torch multiplies it by a
factor in float64 and rounds to float32: so do we under x64; without x64 the
product is a float32 one, the same number whenever the factor is a float32
number (2, 0.5, 1.5, ...; a factor such as 0.3 may differ by one float32 ulp).
Gradients are unscaled in float32 at least (float16 ones are rounded back to
float16 after the product): ``1/scale`` itself is not a float16 number once the
scale passes 2**24, nor a normal float32 one past 2**126 (XLA flushes it to 0).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..errors import ConfigError
from ..layout import is_flat
from ..validation import Range, check_number, float32_problem, is_concrete_int
from .in_place import with_in_place
from .select import apply_if, update_if


class LossScaleState(NamedTuple):
    scale: jax.Array
    growth_tracker: jax.Array
    finite: jax.Array  # the last update's gradients were finite (it was applied)
    inner: Any


_RANGES = dict(init_scale=Range(0.0, low_open=True), growth_factor=Range(1.0),
               backoff_factor=Range(0.0, 1.0, low_open=True))


def _check_arguments(init_scale, growth_factor, backoff_factor, growth_interval) -> None:
    given = dict(init_scale=init_scale, growth_factor=growth_factor,
                 backoff_factor=backoff_factor)
    for name, value in given.items():
        check_number(f"dynamic_loss_scale: {name}", value, _RANGES[name])
        if not isinstance(value, jax.Array):
            why = float32_problem(value)
            if why:
                raise ConfigError(f"dynamic_loss_scale: {name}={value!r} {why}; the loss "
                                  "scale and its factors are float32 numbers (as in torch's "
                                  "GradScaler)")
    if not is_concrete_int(growth_interval) or growth_interval < 1 or \
            growth_interval > 2**31 - 1:
        raise ConfigError(f"dynamic_loss_scale: growth_interval={growth_interval!r} must be "
                          "an int in [1, 2**31 - 1] (finite updates in a row before growing)")


def _times(scale, factor):
    """``scale * factor`` as torch's GradScaler computes it: in float64 (x64), rounded to
    float32. Without x64 a float32 product: the same number when the factor is one."""
    wide = jax.dtypes.canonicalize_dtype(jnp.float64)
    return (scale.astype(wide) * jnp.asarray(factor, wide)).astype(jnp.float32)


def dynamic_loss_scale(inner: optax.GradientTransformation, init_scale: float = 2.0**16,
                       growth_factor: float = 2.0, backoff_factor: float = 0.5,
                       growth_interval: int = 2000) -> optax.GradientTransformationExtraArgs:
    """torch ``GradScaler(init_scale, growth_factor, backoff_factor, growth_interval)``
    around ``inner``: unscale, skip non-finite updates, adapt the scale.

    Arguments out of torch's ranges (``init_scale > 0``, ``growth_factor >= 1``,
    ``0 < backoff_factor <= 1``, ``growth_interval`` an int >= 1) or without a positive
    finite float32 value (``init_scale=1e40``) are refused with a ``ConfigError``.
    """
    _check_arguments(init_scale, growth_factor, backoff_factor, growth_interval)
    inner = optax.with_extra_args_support(inner)

    def init(params):
        return LossScaleState(jnp.asarray(init_scale, jnp.float32), jnp.zeros((), jnp.int32),
                              jnp.ones((), bool), inner.init(params))

    def unscaled(updates, state, grad_mask):
        """The gradients divided by the scale, and whether all that count are finite."""
        # torch multiplies by float32(1 / scale). Past 2**126 that is subnormal, which XLA
        # flushes to 0 (every gradient would be 0): multiply by 2**64 / scale, then 2**-64
        shift = jnp.where(state.scale >= 2.0**64, jnp.float32(2.0**64), jnp.float32(1.0))
        inv = (shift / state.scale).astype(jnp.float32)
        back = (1.0 / shift).astype(jnp.float32)

        def unscale(g):
            wide = jnp.promote_types(g.dtype, jnp.float32)
            return (g.astype(wide) * inv.astype(wide) * back.astype(wide)).astype(g.dtype)

        updates = jax.tree.map(unscale, updates)
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
        grown = _times(state.scale, growth_factor)
        grown = jnp.where(jnp.isfinite(grown), grown, state.scale)  # torch: never to inf
        scale = jnp.where(finite, jnp.where(grow, grown, state.scale),
                          _times(state.scale, backoff_factor))
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
