"""The hand-fused steps of bench/fused.py (variant b) written on a flat layout.

Same maths, same per-leaf constants (``fused.Recipe``), but parameters, gradients and
optimizer state are one ``[rows, width]`` float32 buffer each (``FlatLayout``, tensors
ordered by group then leaf, each padded to whole rows):

- per-tensor norms: a row reduction and a sorted segment sum (``layout.sum_squares``);
  the ``grad_clip`` total 2-norm is ``sqrt(sum(g*g))`` over the whole buffer (padding 0);
- per-tensor values (lr, weight decay, trust ratio, step size) are ``[n]`` vectors,
  broadcast to ``[rows, 1]`` by one gather (``layout.per_row``);
- the update is one elementwise expression over the buffers, so the compiled step has
  the same few kernels whatever the number of tensors.

``build_flat(recipe, layout)`` returns a ``fused.Fused`` whose functions take and
return raw buffers (``p``, ``g``, the state's ``buf`` / ``m`` / ``v``, ``acc``):
``step(p, state, g)``, or ``start`` / ``accumulate`` / ``update`` with
``update_interval``, each jitted with every buffer donated, as in bench/fused.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from fused import Fused, Recipe

from optax_selfsup.layout import Flat, FlatLayout


def _float():
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def recipe_groups(recipe: Recipe) -> list[int]:
    """Per leaf: its group, numbered by first appearance of (lr, wd, lars_exclude)."""
    keys = list(zip(recipe.base_lr, recipe.weight_decay, recipe.lars_exclude))
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return [index[k] for k in keys]


def make_layout(recipe: Recipe, params, **kwargs) -> FlatLayout:
    return FlatLayout(params, groups=recipe_groups(recipe), **kwargs)


def _vectors(recipe: Recipe, layout: FlatLayout):
    """Per-leaf constants in layout order."""
    pick = lambda xs: np.asarray([xs[i] for i in layout.order])
    return (pick(recipe.base_lr).astype(np.float64), pick(recipe.weight_decay),
            pick(recipe.lars_exclude).astype(bool))


def lars_flat(recipe: Recipe, layout: FlatLayout, key: str = "float32"):
    """(init_slots, apply) of MMSelfSup's LARS (+ grad_clip 2-norm) on the buffers."""
    m, eta, eps = recipe.momentum, recipe.eta, recipe.eps
    base_lr, wd, excl = _vectors(recipe, layout)
    wd_rows = layout.per_row(wd.astype(np.float32), key)
    any_excl, all_excl = bool(excl.any()), bool(excl.all())

    def init_slots(p):
        return {"buf": jnp.zeros_like(p)}

    def apply(p, g, slots, it, count):
        g_sq = layout.sum_squares(Flat(layout, (g,)))
        coef = None
        if recipe.max_norm is not None:
            total = jnp.sqrt(jnp.sum(g_sq))
            coef = jnp.minimum(recipe.max_norm / (total + 1e-6), 1.0)
        lr = recipe.schedule(it, jnp.asarray(base_lr))
        if all_excl:
            scale = lr
        else:
            w_norm = jnp.sqrt(layout.sum_squares(Flat(layout, (p,))))
            g_norm = jnp.sqrt(g_sq) if coef is None else jnp.sqrt(g_sq) * coef
            trust = eta * w_norm / (g_norm + wd * w_norm + eps)
            trust = jnp.where((w_norm != 0) & (g_norm != 0), trust, 1.0)
            if any_excl:
                trust = jnp.where(excl, 1.0, trust)
            scale = trust.astype(p.dtype) * lr.astype(p.dtype)
        scale_rows = layout.per_row(scale.astype(p.dtype), key)
        if coef is not None:
            g = g * coef.astype(p.dtype)
        d = (g + wd_rows * p) * scale_rows
        b = jnp.where(count == 0, d, m * slots["buf"] + d) if m else d
        return p - b, {"buf": b}

    return init_slots, apply


def adamw_flat(recipe: Recipe, layout: FlatLayout, key: str = "float32"):
    """(init_slots, apply) of torch AdamW (+ grad_clip 2-norm) on the buffers."""
    b1, b2, eps = (*recipe.betas, recipe.eps)
    base_lr, wd, _ = _vectors(recipe, layout)

    def init_slots(p):
        return {"m": jnp.zeros_like(p), "v": jnp.zeros_like(p)}

    def apply(p, g, slots, it, count):
        t = (count + 1).astype(_float())
        bc1 = 1 - jnp.power(jnp.asarray(b1, _float()), t)
        bc2_sqrt = jnp.sqrt(1 - jnp.power(jnp.asarray(b2, _float()), t))
        if recipe.max_norm is not None:  # whole-buffer sum: padding is 0
            total = jnp.sqrt(jnp.sum(g * g))
            g = g * jnp.minimum(recipe.max_norm / (total + 1e-6), 1.0).astype(p.dtype)
        lr = recipe.schedule(it, jnp.asarray(base_lr))
        if wd.any():
            p = p * layout.per_row((1 - lr * wd).astype(p.dtype), key)
        m = slots["m"] + (1 - b1) * (g - slots["m"])
        v = slots["v"] * b2 + (1 - b2) * g * g
        step = layout.per_row((lr / bc1).astype(p.dtype), key)
        new_p = p - step * (m / (jnp.sqrt(v) / bc2_sqrt.astype(p.dtype) + eps))
        return new_p, {"m": m, "v": v}

    return init_slots, apply


def build_flat(recipe: Recipe, layout: FlatLayout) -> Fused:
    """bench/fused.py's ``build_fused`` on raw flat buffers (``layout.keys == ('float32',)``)."""
    if layout.keys != ("float32",):
        raise NotImplementedError(f"bench/flat_steps.py: one float32 buffer, got {layout.keys}")
    init_slots, apply = (lars_flat if recipe.optimizer == "LARS" else adamw_flat)(recipe, layout)
    k = recipe.every_k

    def init(p):
        return {"it": jnp.asarray(k - 1, jnp.int32), "count": jnp.zeros((), jnp.int32),
                **init_slots(p)}

    def apply_state(p, state, g):
        slots = {key: v for key, v in state.items() if key not in ("it", "count")}
        new_p, new_slots = apply(p, g, slots, state["it"], state["count"])
        return new_p, {"it": state["it"] + k, "count": state["count"] + 1, **new_slots}

    if k == 1:
        return Fused(recipe, init, step=jax.jit(apply_state, donate_argnums=(0, 1)))

    def start(acc, g):
        return g / k

    def accumulate(acc, g):
        return acc + g / k

    def update(p, state, acc, g):
        total = accumulate(acc, g)
        p, state = apply_state(p, state, total)
        return p, state, total

    return Fused(recipe, init, start=jax.jit(start, donate_argnums=(0,), keep_unused=True),
                 accumulate=jax.jit(accumulate, donate_argnums=(0,)),
                 update=jax.jit(update, donate_argnums=(0, 1, 2)))
