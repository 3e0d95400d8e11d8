"""Gradient accumulation: ``optax.MultiSteps`` standing alone, MMSelfSup's rule on a clock.

Call ``update`` with every micro-batch's gradient; it returns zeros until a
group of ``every_k_schedule`` micro-steps is complete, then the inner
transformation's update of the group's mean gradient. ``tx.has_updated(state)``
(or ``oss.has_updated(opt_state)`` on a whole chain's state) tells whether the
last call applied one. Which numbers depends on whether an outer ``oss.clocked``
hands in the global micro-iteration (``iteration=``):

- standing alone (no ``iteration=``): ``optax.MultiSteps(inner, every_k_schedule=k)``:
  its arithmetic (the running mean ``acc + (g - acc) / (n + 1)``, or the sum with
  ``use_grad_mean=False``; a float32 accumulator by default, handed to the inner in
  the gradients' dtype), so its numbers bit for bit where XLA compiles the inner
  alike in both programs (else a few float32 ulp: adam, SGD's dampening). The inner
  transformation is called as MultiSteps calls it, without ``iteration=``, so it
  counts its own updates: a schedule is read at 0, 1, 2, ... updates.
- inside ``oss.clocked`` (``build_optimizer``'s chain): MMSelfSup's
  ``DistOptimizerHook(update_interval=k)`` / mmcv
  ``GradientCumulativeOptimizerHook(cumulative_iters=k)``. Every micro-step's
  gradient is divided by ``k`` and summed (torch's ``loss / k`` backward); the
  update happens when ``(it + 1) % k == 0`` for the global micro-iteration ``it``,
  and the inner transformation gets that ``iteration=it``, so its lr and momentum
  are the schedule values at the update's last micro-step (``lr(3)``, ``lr(7)``,
  ... with ``k=4``), as mmcv's lr hooks step every micro-iteration.

``max_iters`` (both ways) adds MMSelfSup's end of run: the last
``r = max_iters % k`` micro-steps form a final group, divided by ``r`` and applied
at ``it = max_iters - 1``. ``flush_remainder=False`` is the fp16 hook's variant:
always ``/k``, no final partial update.

``divide_loss=True`` (``build_optimizer`` with fp16 / AMP): the caller has already
divided the micro-step's loss by the group's divisor (``k``, or ``r`` in the final
group), as torch's ``scaler.scale(loss / k)`` does before a float16 backward, so
the gradients are summed, not divided again. The state is then a
``LossDivisorState``: the divisor of the next call's loss around the
``AccumulateState`` (whose fields, and so the checkpoints of runs without a loss
scale, are unchanged); ``oss.loss_scale(opt_state)`` folds the divisor into the
factor the loss is multiplied by. A loss divided by another number than the one
this call's group needs (a run restored with another ``max_iters`` or
``update_interval``) is rescaled by ``told / needed``, which is 1 otherwise.

The accumulator is not cleared after an update: a group's first micro-step
overwrites it (with ``grad / k``, as torch's first ``backward`` after
``zero_grad`` assigns ``.grad``), so no step spends a pass on writing zeros and
between an update and the next micro-step ``acc`` holds scratch values. The
inner update runs in ``select.update_if``'s loop of zero or one trips, with the
accumulator's buffer as the loop's carry. ``oss.update_and_apply`` steps it
without the ``params + zeros`` pass of the optax protocol: an accumulate-only
micro-step then reads and writes only the accumulator.
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..errors import ConfigError
from ..pytrees import boxed_like, unbox
from ..tree_checks import check_gradients
from .in_place import with_in_place
from .select import apply_if, update_if


class AccumulateState(NamedTuple):
    """State of ``accumulate``: the micro-step count (the clock when none is handed in),
    the current group's running mean (or sum), whether the last call applied an update,
    and the inner optimizer's state."""

    count: jax.Array  # micro-steps seen: the clock when none is handed in
    acc: Any  # the current group's mean (or sum) so far
    updated: jax.Array  # whether the last call applied an update
    inner: Any


class LossDivisorState(NamedTuple):
    """``accumulate(..., divide_loss=True)``'s state: what the caller divides the next
    call's loss by (int32: ``k``, or ``r`` in the final group), around the accumulation's."""
    loss_divisor: jax.Array
    inner: AccumulateState


class Accumulate(optax.GradientTransformationExtraArgs):
    """The transformation ``accumulate`` returns, with ``optax.MultiSteps``' methods:
    ``has_updated(state)``, ``inner_opt`` and ``gradient_transformation()``."""

    __slots__ = ()

    @staticmethod
    def has_updated(state: AccumulateState | LossDivisorState) -> jax.Array:
        return (state.inner if isinstance(state, LossDivisorState) else state).updated

    @property
    def inner_opt(self) -> optax.GradientTransformation:
        """The wrapped transformation, as given."""
        return self.update.inner_opt

    def gradient_transformation(self) -> Accumulate:
        """This transformation itself (it already is one; ``optax.MultiSteps`` needs
        the call): usable in ``optax.chain`` and from ``optax.inject_hyperparams``."""
        return self


def _group_size(value) -> int:
    if callable(value):
        raise ConfigError(
            f"accumulate: every_k_schedule={value!r} is a callable; only a constant group "
            "size is supported (an int >= 1, as MMSelfSup's update_interval). For a group "
            "size that varies over training use optax.MultiSteps(inner, every_k_schedule=fn), "
            "which also wraps the optax_selfsup optimizers")
    try:
        k = operator.index(value)
    except TypeError:
        k = None
    if isinstance(value, bool) or k is None or k < 1:
        raise ConfigError(f"accumulate: every_k_schedule={value!r} must be an int >= 1 "
                          "(micro-steps per update)")
    return k


def group_divisor(it, every_k: int, max_iters: int | None = None,
                  flush_remainder: bool = True) -> jax.Array:
    """The divisor of micro-iteration ``it``'s loss (or gradient): ``every_k``, or
    ``r = max_iters % every_k`` in the final group where ``flush_remainder`` makes one
    (MMEngine's ``OptimWrapper.scale_loss``). An int32 array."""
    if max_iters is None or not flush_remainder or max_iters % every_k == 0:
        return jnp.asarray(every_k, jnp.int32)
    divisible = max_iters // every_k * every_k
    return jnp.where(jnp.asarray(it) < divisible, every_k, max_iters - divisible
                     ).astype(jnp.int32)


def accumulate(inner: optax.GradientTransformation, every_k_schedule: int,
               use_grad_mean: bool = True, *, max_iters: int | None = None,
               flush_remainder: bool = True,
               accumulator_dtype: Any = jnp.float32,
               divide_loss: bool = False) -> Accumulate:
    """Average ``every_k_schedule`` micro-steps' gradients, then apply ``inner`` once.

    Standing alone the same numbers as ``optax.MultiSteps(inner, every_k_schedule,
    use_grad_mean, accumulator_dtype=accumulator_dtype)``; inside ``oss.clocked``
    MMSelfSup's accumulation on the global micro-iteration (see the module docstring).

    Args:
      inner: any optax transformation (on a clock it also receives ``iteration=``).
      every_k_schedule: micro-steps per update, an int (``update_interval`` /
        ``cumulative_iters``); a callable is refused (use ``optax.MultiSteps``).
      use_grad_mean: the mean of the group's gradients (True) or their sum.
      max_iters: the run's length in micro-steps; with ``flush_remainder`` its last
        ``max_iters % every_k_schedule`` micro-steps form a final, shorter group
        (MMSelfSup). None: every group has ``every_k_schedule`` micro-steps.
      flush_remainder: False for the fp16 hook's rule (always ``/k``).
      accumulator_dtype: the accumulator's dtype, float32 as in ``optax.MultiSteps``;
        None keeps the params' dtype (torch's ``.grad``; ``build_optimizer`` does).
      divide_loss: True when the caller divides each micro-step's loss by the group's
        divisor (``oss.loss_scale(opt_state)`` includes it; torch's ``loss / k`` before
        ``GradScaler.scale``): the gradients are then summed, not divided.
        ``build_optimizer`` sets it with fp16 / ``AmpOptimWrapper``.
    """
    every_k = _group_size(every_k_schedule)
    if not isinstance(use_grad_mean, bool):
        raise ConfigError(f"accumulate: use_grad_mean={use_grad_mean!r} must be True or False")
    if not isinstance(divide_loss, bool):
        raise ConfigError(f"accumulate: divide_loss={divide_loss!r} must be True or False")
    if max_iters is not None and (isinstance(max_iters, bool) or not isinstance(max_iters, int)
                                  or max_iters < 1):
        raise ConfigError(f"accumulate: max_iters={max_iters!r} must be an int >= 1 or None")
    given = inner
    inner = optax.with_extra_args_support(inner)
    if max_iters is None:
        flush_remainder = False
    else:
        divisible = max_iters // every_k * every_k
        remainder = max_iters - divisible
    flush = flush_remainder and bool(remainder)
    acc_dtype = None if accumulator_dtype is None else jnp.dtype(accumulator_dtype)

    def loss_divisor(it):
        """What ``divide_loss`` asks the caller to divide micro-iteration ``it``'s loss by."""
        if not use_grad_mean:
            return jnp.ones((), jnp.int32)
        return group_divisor(it, every_k, max_iters, flush)

    def init(params):
        params = unbox(params)
        state = AccumulateState(jnp.zeros((), jnp.int32),
                                jax.tree.map(lambda p: jnp.zeros_like(p, acc_dtype), params),
                                jnp.zeros((), bool), inner.init(params))
        return LossDivisorState(loss_divisor(0), state) if divide_loss else state

    def accumulated(grads, state, iteration, told=None):
        """(is_update, the group's mean or sum so far) for this micro-step; ``told``: the
        divisor the caller divided this loss by (``divide_loss``)."""
        check_gradients(grads, state.acc, "accumulate", dtypes=False)  # no broadcasting
        it = state.count if iteration is None else iteration
        if flush:
            in_full_group = it < divisible
            is_update = ((it + 1) % every_k == 0) | (it == max_iters - 1)
        else:
            is_update = (it + 1) % every_k == 0
        n = it % every_k  # micro-steps before this one in its group (remainder's too)
        first = n == 0
        if divide_loss:  # the loss came divided: sum (torch adds every backward to .grad)
            # told / needed is 1 (g * 1 == g) unless a restored run changed the divisor
            ratio = told.astype(jnp.float32) / loss_divisor(it).astype(jnp.float32)
            add = lambda a, g: jnp.where(first, g * ratio.astype(g.dtype),
                                         a + g * ratio.astype(g.dtype))
            return is_update, jax.tree.map(add, state.acc, unbox(grads))
        if iteration is None:  # optax.MultiSteps' arithmetic
            if use_grad_mean:
                add = lambda a, g: jnp.where(first, g, a + (g - a) / (n + 1))
            else:
                add = lambda a, g: jnp.where(first, g, g + a)
            return is_update, jax.tree.map(add, state.acc, unbox(grads))
        factors = (every_k, remainder) if flush else (every_k,)
        if not use_grad_mean:
            factors = (1,)
        # g / f, as g * (1 / f) where that is exact (f a power of two): a multiply
        # costs far less than a divide over a whole gradient
        exact = all(f & (f - 1) == 0 for f in factors)
        pick = lambda *xs: xs[0] if len(xs) == 1 else jnp.where(in_full_group, *xs)

        def add(a, g):
            if factors == (1,):
                pass
            elif exact:
                g = g * jnp.asarray(pick(*(1.0 / f for f in factors)), g.dtype)
            else:
                g = g / jnp.asarray(pick(*factors), g.dtype)
            return jnp.where(first, g, a + g)

        return is_update, jax.tree.map(add, state.acc, unbox(grads))

    def unwrap(state):
        """(the divisor the caller was told, or None; the AccumulateState)."""
        return (state.loss_divisor, state.inner) if divide_loss else (None, state)

    def wrap(new, iteration):
        """``new`` (after the call at ``iteration``, or ``new.count - 1``) as returned."""
        if not divide_loss:
            return new
        it = new.count - 1 if iteration is None else iteration
        return LossDivisorState(loss_divisor(it + 1), new)

    def clock(iteration):
        """What the inner transformation is handed: the update's micro-iteration on a
        clock; nothing standing alone (it counts its own updates, as in MultiSteps)."""
        return {} if iteration is None else {"iteration": iteration}

    def like(tree, template):  # ``tree`` cast leaf by leaf to ``template``'s dtypes
        return jax.tree.map(lambda x, t: x.astype(t.dtype), tree, template)

    def update(grads, state, params=None, *, iteration=None, hparams_only=False, **extra):
        told, state = unwrap(state)
        if hparams_only:  # see select.update_if
            _, inner_state = inner.update(unbox(grads), state.inner, params,
                                          hparams_only=True, **clock(iteration), **extra)
            new = state._replace(inner=inner_state)
            return grads, new if told is None else LossDivisorState(told, new)
        is_update, acc = accumulated(grads, state, iteration, told)
        # the inner sees the gradients' dtype (MultiSteps: ``cast_like``). Where that is
        # the accumulator's, its buffer carries the inner update out (select.update_if)
        carry = like(acc, unbox(grads))
        out, inner_state = update_if(is_update, inner, carry, state.inner, params,
                                     **clock(iteration), **extra)
        new_updates = jax.tree.map(lambda o: jnp.where(is_update, o, jnp.zeros_like(o)), out)
        # after an update ``out`` holds the update (scratch until the next group starts)
        new_acc = jax.tree.map(lambda o, a, s: (o if o.dtype == s.dtype else a).astype(s.dtype),
                               out, acc, state.acc)
        return (boxed_like(new_updates, grads),
                wrap(AccumulateState(state.count + 1, new_acc, is_update, inner_state),
                     iteration))

    def apply(grads, state, params, *, iteration=None, **extra):
        """update_and_apply: on an accumulate-only micro-step only the accumulation runs."""
        told, state = unwrap(state)
        is_update, acc = accumulated(grads, state, iteration, told)
        params, inner_state = apply_if(is_update, inner, like(acc, unbox(grads)), state.inner,
                                       params, **clock(iteration), **extra)
        return params, wrap(AccumulateState(state.count + 1, like(acc, state.acc), is_update,
                                            inner_state), iteration)

    update.inner_opt = given
    return with_in_place(Accumulate(init, update), apply)
