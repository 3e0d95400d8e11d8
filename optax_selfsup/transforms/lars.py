"""MMSelfSup's LARS trust ratio as an optax scaling, for hand-written chains.

Upstream: ``mmselfsup.core.optimizer.LARS``. Per tensor, with the raw gradient
``g`` and the parameter ``p``::

    local = eta * ||p|| / (||g|| + wd * ||p|| + eps)   (1 if a norm is 0 or excluded)
    d     = (g + wd * p) * local

``scale_by_lars`` returns ``d``. MMSelfSup then multiplies by the lr BEFORE the
momentum buffer (``b = m*b + lr*d; p -= b``), so the exact composition is::

    optax.chain(oss.scale_by_lars(weight_decay=wd, exclude=mask),
                optax.scale_by_learning_rate(lr_schedule),   # -lr * d
                optax.trace(decay=momentum))                 # b = m*b + (-lr*d)

``optax.chain(..., optax.trace(momentum), optax.scale_by_learning_rate(lr))``
applies the lr after the buffer instead: the same while the lr is constant,
different whenever it changes (warmup, cosine). The weight decay belongs inside
``scale_by_lars`` (not ``optax.add_decayed_weights`` before it) because the
trust ratio uses the norm of the raw gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..pytrees import boxed_like, per_leaf, unbox
from ..tree_checks import check_gradients


def lars_trust_ratio(g, p, weight_decay, eta, eps, g_norm=None, norm=None):
    """``eta*||p|| / (||g|| + wd*||p|| + eps)``, or 1 when ``||p||`` or ``||g||`` is 0
    (``g_norm``: ``||g||`` when already known; ``norm``: the tensor norm, per tensor by
    default, per row on the flat layout)."""
    norm = norm or (lambda x: jnp.linalg.norm(x.ravel()))
    w_norm = norm(p)
    if g_norm is None:
        g_norm = norm(g)
    else:
        g_norm = g_norm.astype(w_norm.dtype)
    trust = eta * w_norm / (g_norm + weight_decay * w_norm + eps)
    return jnp.where((w_norm != 0) & (g_norm != 0), trust, 1.0)


class ScaleByLarsState(NamedTuple):
    """No state: the trust ratio depends on the current gradient and parameter only."""


def scale_by_lars(weight_decay=0.0, eta: float = 1e-3, eps: float = 1e-8,
                  exclude=False) -> optax.GradientTransformation:
    """``(g + wd*p) * local`` per tensor (MMSelfSup LARS without the lr and momentum).

    ``weight_decay`` is one number or a per-leaf pytree (e.g. from
    ``oss.paramwise_values``); ``exclude`` is one bool or a per-leaf pytree of bools
    (e.g. ``oss.regex_mask(params, r"bias|bn")``): excluded tensors get ``local = 1``
    (MMSelfSup's ``lars_exclude``) but keep their weight decay.
    """

    def init(params):
        del params
        return ScaleByLarsState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_lars needs the params: update(grads, state, params)")
        check_gradients(updates, params, "scale_by_lars", dtypes=False)  # no broadcasting
        grads, treedef = jax.tree.flatten(unbox(updates))
        ps = treedef.flatten_up_to(unbox(params))
        wds = per_leaf(weight_decay, treedef, "weight_decay", where="scale_by_lars")
        excluded = per_leaf(exclude, treedef, "exclude", where="scale_by_lars")
        out = []
        for g, p, wd, skip in zip(grads, ps, wds, excluded):
            d = g + wd * p if not (isinstance(wd, (int, float)) and wd == 0) else g
            if not bool(skip):
                d = d * lars_trust_ratio(g, p, wd, eta, eps).astype(g.dtype)
            out.append(d.astype(g.dtype))
        return boxed_like(out, updates), state

    return optax.GradientTransformation(init, update)
