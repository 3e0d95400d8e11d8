"""The one global clock: the outermost wrapper counts micro-iterations.

``clocked(inner)`` keeps the global iteration ``it`` (0-based, one per call of
``update``) and hands it to ``inner`` as ``iteration=it``; inner
transformations never keep a clock of their own that could drift. Without it
each piece counts its own calls (optax's convention); ``oss.accumulate`` is then
``optax.MultiSteps`` (its inner counts updates), and inside ``clocked`` it is
MMSelfSup's accumulation (its inner reads the update's micro-iteration).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .in_place import update_and_apply, with_in_place


class ClockedState(NamedTuple):
    iteration: jax.Array  # the next update's global micro-iteration
    inner: Any


def clocked(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Hand ``inner`` the global micro-iteration ``it`` (0, 1, 2, ... one per ``update``).

    ``inner.update(g, s, p, iteration=it)``: every schedule, accumulation group and
    frozen period inside reads this one counter, as mmcv's runner has one ``iter``.
    An ``iteration=`` passed by the caller is replaced. The state is
    ``ClockedState(iteration, inner)``; ``update_and_apply`` works through it.
    """
    inner = optax.with_extra_args_support(inner)

    def init(params):
        return ClockedState(jnp.zeros((), jnp.int32), inner.init(params))

    def update(updates, state, params=None, **extra):
        extra.pop("iteration", None)
        updates, inner_state = inner.update(updates, state.inner, params,
                                            iteration=state.iteration, **extra)
        return updates, ClockedState(state.iteration + 1, inner_state)

    def apply(grads, state, params, **extra):
        extra.pop("iteration", None)
        params, inner_state = update_and_apply(inner, grads, state.inner, params,
                                               iteration=state.iteration, **extra)
        return params, ClockedState(state.iteration + 1, inner_state)

    return with_in_place(optax.GradientTransformationExtraArgs(init, update), apply)
