"""Gradient accumulation on the global clock (MMSelfSup ``update_interval``).

Upstream: ``DistOptimizerHook(update_interval=k)`` / mmcv
``GradientCumulativeOptimizerHook(cumulative_iters=k)``. Every micro-step's
gradient is divided by ``k`` and summed; an update happens when
``(it + 1) % k == 0`` or at the run's last iteration, and the last incomplete
group of ``r = max_iters % k`` micro-steps is divided by ``r`` instead. The
inner transformation sees the update's own ``it`` (its last micro-step), so lr
and momentum are the schedule values there. ``flush_remainder=False`` is the
fp16 hook's variant: always ``/k``, no final partial update.

A drop-in for ``optax.MultiSteps(inner, every_k_schedule=k)``: call ``update``
with every micro-batch's gradient; it returns zeros until an update, and
``tx.has_updated(state)`` (or ``oss.has_updated(opt_state)`` on a whole chain's
state) tells whether the last call applied one. Differences: the iteration
``it`` is handed in by ``oss.clocked`` when there is one (else this wrapper
counts its own micro-steps) and is the inner transformation's schedule index,
as in MMSelfSup, where ``MultiSteps`` counts updates; ``max_iters`` adds
MMSelfSup's remainder rule. The state is one accumulator buffer plus scalars.

The accumulator is not cleared after an update: a group's first micro-step
overwrites it with ``grad / factor`` (as torch's first ``backward`` after
``zero_grad`` assigns ``.grad``), so no step spends a pass on writing zeros and
between an update and the next micro-step ``acc`` holds scratch values.
``oss.update_and_apply`` steps it without the ``params + zeros`` pass of the
optax protocol: an accumulate-only micro-step then reads and writes only the
accumulator.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..pytrees import boxed_like, unbox
from .in_place import with_in_place
from .select import apply_if, update_if


class AccumulateState(NamedTuple):
    count: jax.Array  # micro-steps seen: the clock when none is handed in
    acc: Any  # sum of grad / factor over the current group
    updated: jax.Array  # whether the last call applied an update
    inner: Any


class Accumulate(optax.GradientTransformationExtraArgs):
    """The transformation ``accumulate`` returns; ``has_updated`` as in ``optax.MultiSteps``."""

    __slots__ = ()

    @staticmethod
    def has_updated(state: AccumulateState) -> jax.Array:
        return state.updated


def _positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"accumulate: {name}={value!r} must be an int >= 1")


def accumulate(inner: optax.GradientTransformation, every_k: int, max_iters: int | None = None,
               flush_remainder: bool = True) -> Accumulate:
    """Average ``every_k`` micro-steps' gradients, then apply ``inner`` once.

    Args:
      inner: any optax transformation (it also receives ``iteration=``).
      every_k: micro-steps per update (``update_interval`` / ``cumulative_iters``).
      max_iters: the run's length in micro-steps; with ``flush_remainder`` its last
        ``max_iters % every_k`` micro-steps form a final, shorter group (MMSelfSup).
        None: no end of run is known, every group has ``every_k`` micro-steps.
      flush_remainder: False for the fp16 hook's rule (always ``/every_k``).
    """
    _positive_int("every_k", every_k)
    _positive_int("max_iters", max_iters, allow_none=True)
    inner = optax.with_extra_args_support(inner)
    if max_iters is None:
        flush_remainder = False
    else:
        divisible = max_iters // every_k * every_k
        remainder = max_iters - divisible

    def init(params):
        params = unbox(params)
        return AccumulateState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params),
                               jnp.zeros((), bool), inner.init(params))

    def accumulated(grads, state, iteration):
        """(it, is_update, the group's sum so far) for this micro-step."""
        it = state.count if iteration is None else iteration
        factors = (every_k, remainder) if flush_remainder and remainder else (every_k,)
        if len(factors) == 2:
            in_full_group = it < divisible
            is_update = ((it + 1) % every_k == 0) | (it == max_iters - 1)
        else:
            in_full_group = True
            is_update = (it + 1) % every_k == 0
        first = it % every_k == 0  # a group's first micro-step (the remainder's too)
        # g / f, as g * (1 / f) where that is exact (f a power of two): a multiply
        # costs far less than a divide over a whole gradient
        exact = all(f & (f - 1) == 0 for f in factors)
        pick = lambda *xs: xs[0] if len(xs) == 1 else jnp.where(in_full_group, *xs)

        def add(a, g):
            if exact:
                g = g * jnp.asarray(pick(*(1.0 / f for f in factors)), g.dtype)
            else:
                g = g / jnp.asarray(pick(*factors), g.dtype)
            return jnp.where(first, g, a + g)

        return it, is_update, jax.tree.map(add, state.acc, unbox(grads))

    def update(grads, state, params=None, *, iteration=None, hparams_only=False, **extra):
        if hparams_only:  # see select.update_if
            it = state.count if iteration is None else iteration
            _, inner_state = inner.update(unbox(grads), state.inner, params, iteration=it,
                                          hparams_only=True, **extra)
            return grads, state._replace(inner=inner_state)
        it, is_update, acc = accumulated(grads, state, iteration)
        # the accumulator's buffer carries the inner update out (select.update_if)
        out, inner_state = update_if(is_update, inner, acc, state.inner, params,
                                     iteration=it, **extra)
        new_updates = jax.tree.map(lambda o: jnp.where(is_update, o, jnp.zeros_like(o)), out)
        # after an update ``out`` holds the update (scratch until the next group starts)
        return (boxed_like(new_updates, grads),
                AccumulateState(state.count + 1, out, is_update, inner_state))

    def apply(grads, state, params, *, iteration=None, **extra):
        """update_and_apply: on an accumulate-only micro-step only ``acc += g / k`` runs."""
        it, is_update, acc = accumulated(grads, state, iteration)
        params, inner_state = apply_if(is_update, inner, acc, state.inner, params,
                                       iteration=it, **extra)
        return params, AccumulateState(state.count + 1, acc, is_update, inner_state)

    return with_in_place(Accumulate(init, update), apply)
