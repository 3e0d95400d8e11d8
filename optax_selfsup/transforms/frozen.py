"""Frozen layers: leaves without a gradient until an iteration (``frozen_layers_cfg``).

Upstream (MMSelfSup ``DistOptimizerHook``): at an update at iteration
``it < n``, every parameter whose name contains the substring gets
``p.grad = None``: the optimizer skips it entirely and the clip norm leaves it
out. Here that is a traced ``grad_mask`` handed inward; its schedules keep
running on the global clock. Zeroing the gradient instead would still apply
weight decay, momentum and LARS scaling to it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def frozen_until(names, frozen_layers_cfg: dict) -> list[int]:
    """Per leaf: the iteration before which it is frozen (0 = never)."""
    return [max([n for sub, n in frozen_layers_cfg.items() if sub in name], default=0)
            for name in names]


def skip_frozen(inner: optax.GradientTransformation,
                until) -> optax.GradientTransformationExtraArgs:
    """``until``: a pytree (shaped like the params) of ints, 0 for never-frozen leaves."""
    inner = optax.with_extra_args_support(inner)

    def update(updates, state, params=None, *, iteration, grad_mask=None, **extra):
        leaves, treedef = jax.tree.flatten(updates)
        limits = treedef.flatten_up_to(until)
        incoming = [None] * len(leaves) if grad_mask is None else treedef.flatten_up_to(grad_mask)
        masks = []
        for n, m in zip(limits, incoming):
            own = jnp.asarray(True) if n == 0 else iteration >= n
            masks.append(own if m is None else own & m)
        mask = jax.tree.unflatten(treedef, masks)
        updates = jax.tree.map(lambda g, m: jnp.where(m, g, jnp.zeros_like(g)), updates, mask)
        return inner.update(updates, state, params, iteration=iteration, grad_mask=mask, **extra)

    return optax.GradientTransformationExtraArgs(inner.init, update)
