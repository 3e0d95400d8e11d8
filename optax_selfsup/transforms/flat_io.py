"""Per-tensor trees in and out of a flat-layout transformation.

``flat_io(tx, layout)`` takes, at ``init`` / ``update`` / ``update_and_apply``, either
``Flat`` buffers of ``layout`` (the params living flat: passed through) or per-tensor
trees, which it flattens (``layout.flatten``) on the way in and splits
(``layout.unflatten``) on the way out, so ``build_optimizer(..., layout='flat')`` is a
drop-in replacement. A per-leaf ``grad_mask`` becomes the ``[n]`` vector (layout
order). Flattening inside a jitted step costs a copy of the params and gradients and,
per tensor, a distinct slice kernel to compile (docs/flat-layout.md): keep the params
flat where that matters.
"""

from __future__ import annotations

import numpy as np
import optax

from ..layout import is_flat
from ..pytrees import boxed_like, unbox
from .in_place import update_and_apply, with_in_place


def flat_io(inner, layout) -> optax.GradientTransformationExtraArgs:
    inner = optax.with_extra_args_support(inner)

    def into(tree):
        return tree if tree is None or is_flat(tree) else layout.flatten(unbox(tree))

    def mask(extra):
        m = extra.get("grad_mask")
        if m is not None and not (hasattr(m, "shape") and np.shape(m) == (layout.num_tensors,)):
            extra = dict(extra, grad_mask=layout.per_tensor(m, bool))
        return extra

    def init(params):
        return inner.init(into(params))

    def update(updates, state, params=None, **extra):
        out, state = inner.update(into(updates), state, into(params), **mask(extra))
        if is_flat(updates):
            return out, state
        return boxed_like(layout.unflatten(out), updates), state

    def apply(grads, state, params, **extra):
        new, state = update_and_apply(inner, into(grads), state, into(params), **mask(extra))
        if is_flat(params):
            return new, state
        return boxed_like(layout.unflatten(new), params), state

    return with_in_place(optax.GradientTransformationExtraArgs(init, update), apply)
