"""One optimizer step that writes the new parameters itself: ``update_and_apply``.

The optax protocol returns an update tree that the caller adds to the params
(``optax.apply_updates``). For a wrapper that usually applies nothing, that
costs a full pass: on a gradient-accumulation micro-step the update tree is all
zeros, yet ``params + zeros`` still reads and writes every parameter.

``update_and_apply(tx, grads, opt_state, params)`` returns ``(new_params,
new_opt_state)``, the values of::

    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)

Our wrappers (``clocked``, ``accumulate``, ``skip_frozen``, ``dynamic_loss_scale``)
register an in-place variant: the inner update and the ``params + updates``
addition run together inside the wrapper's zero-or-one-trip loop, so a skipped
micro-step touches only the accumulator (MMSelfSup's ``acc += grad / k``). Any
other transformation (an ``optax.chain`` around ours, stock optax) takes the
two-line path above, so its values are those of the two calls.

Bit for bit or float32 rounding: with our optimizers inside our wrappers (every
``build_optimizer`` result, ``oss.accumulate(oss.sgd(...))``, ...) the values
equal the two calls' bit for bit (``parity_tests/test_in_place.py``). A stock
optax optimizer inside our wrappers (``oss.accumulate(optax.adam(...), 4)``)
agrees to float32 rounding only: its arithmetic is compiled together with the
addition to the params, and XLA may fuse it differently in the two programs
(measured up to 2.4e-7 on parameters of order 1 after 12 steps, adam and SGD with
momentum).
"""

from __future__ import annotations

import weakref

import optax

_IN_PLACE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def with_in_place(tx, apply_fn):
    """Register ``apply_fn(grads, state, params, **extra) -> (params, state)`` as ``tx``'s
    in-place step (keyed by ``tx.update``, so copies of the NamedTuple share it)."""
    _IN_PLACE[tx.update] = apply_fn
    return tx


def update_and_apply(tx: optax.GradientTransformation, grads, opt_state, params, **extra):
    """``tx.update`` and ``optax.apply_updates`` in one step: ``(new_params, new_opt_state)``.

    The two calls' values: bit for bit for our optimizers inside our wrappers (every
    ``build_optimizer`` result), to float32 rounding for a stock optax optimizer
    inside our wrappers (see the module doc). For ``build_optimizer``'s
    transformations (and ``oss.accumulate`` / ``oss.dynamic_loss_scale`` /
    ``oss.skip_frozen`` / ``oss.clocked``) the parameters are updated inside the
    wrapper's conditional step, so an accumulate-only micro-step costs only the
    accumulation. Use it in place of the two calls (``jax.jit`` with the params
    and the state donated); ``oss.nnx_update`` does it for an ``nnx.Optimizer``.
    """
    fn = _IN_PLACE.get(getattr(tx, "update", None))
    if fn is not None:
        return fn(grads, opt_state, params, **extra)
    if extra:
        tx = optax.with_extra_args_support(tx)
    updates, opt_state = tx.update(grads, opt_state, params, **extra)
    return optax.apply_updates(params, updates), opt_state


def nnx_update(optimizer, model, grads, **extra):
    """``optimizer.update(model, grads)`` for a Flax ``nnx.Optimizer``, through
    ``update_and_apply`` (the params are written inside the optimizer's step)."""
    from flax import nnx

    graph = {"graph": optimizer.graph} if hasattr(optimizer, "graph") else {}
    params = nnx.as_pure(nnx.state(model, optimizer.wrt, **graph))
    grads = nnx.as_pure(nnx.state(grads, optimizer.wrt, **graph))
    opt_state = nnx.as_pure(optimizer.opt_state)
    new_params, new_opt_state = update_and_apply(optimizer.tx, grads, opt_state, params,
                                                 **nnx.as_pure(extra))
    nnx.update(model, new_params)
    nnx.update(optimizer.opt_state, nnx.state(new_opt_state, **graph))
    optimizer.step[...] += 1
