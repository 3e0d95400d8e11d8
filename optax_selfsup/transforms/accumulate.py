"""Gradient accumulation on the global clock (MMSelfSup ``update_interval``).

Upstream: ``DistOptimizerHook(update_interval=k)`` / mmcv
``GradientCumulativeOptimizerHook(cumulative_iters=k)``. Every micro-step's
gradient is divided by ``k`` and summed; an update happens when
``(it + 1) % k == 0`` or at the run's last iteration, and the last incomplete
group of ``r = max_iters % k`` micro-steps is divided by ``r`` instead. The
inner transformation sees the update's own ``it`` (its last micro-step), so lr
and momentum are the schedule values there. ``flush_remainder=False`` is the
fp16 hook's variant: always ``/k``, no final partial update.

Unlike ``optax.MultiSteps``, no clock is kept here: the iteration comes from
the outermost wrapper. The state is one accumulator buffer.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class AccumulateState(NamedTuple):
    acc: Any  # sum of grad / factor over the current group
    inner: Any


def accumulate(inner: optax.GradientTransformation, every_k: int, max_iters: int,
               flush_remainder: bool = True) -> optax.GradientTransformationExtraArgs:
    inner = optax.with_extra_args_support(inner)
    divisible = max_iters // every_k * every_k
    remainder = max_iters - divisible

    def init(params):
        return AccumulateState(jax.tree.map(jnp.zeros_like, params), inner.init(params))

    def update(updates, state, params=None, *, iteration, **extra):
        it = iteration
        if flush_remainder and remainder:
            factor = jnp.where(it < divisible, every_k, remainder)
            is_update = ((it + 1) % every_k == 0) | (it == max_iters - 1)
        else:
            factor = every_k
            is_update = (it + 1) % every_k == 0
        acc = jax.tree.map(lambda a, g: a + g / jnp.asarray(factor, g.dtype), state.acc, updates)

        # The inner update is computed every micro-step and kept only at updates: on
        # CPU a lax.cond around it costs 2-3x more (it copies the large operands).
        new_updates, new_inner = inner.update(acc, state.inner, params, iteration=it, **extra)
        keep = lambda new, old: jnp.where(is_update, new, old)
        inner_state = jax.tree.map(keep, new_inner, state.inner)
        new_updates = jax.tree.map(lambda u: jnp.where(is_update, u, jnp.zeros_like(u)),
                                   new_updates)
        acc = jax.tree.map(lambda a: jnp.where(is_update, jnp.zeros_like(a), a), acc)
        return new_updates, AccumulateState(acc, inner_state)

    return optax.GradientTransformationExtraArgs(init, update)
