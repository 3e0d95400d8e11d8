"""Keeping a wrapped transformation's state when its update is not applied.

An accumulation micro-step and an fp16-skipped update compute the inner update
and then keep the old state (``jnp.where``, no host branch). State classes may
name ``LIVE_FIELDS``: values that describe the current iteration rather than the
training history (the lr and momentum in force, what mmcv logs at every
iteration); those are taken from the new state at every call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _has_live_fields(x) -> bool:
    return hasattr(type(x), "LIVE_FIELDS") and hasattr(x, "_fields")


def keep_unless(applied, new_state, old_state):
    """``new_state`` where ``applied`` (a traced bool) holds, else ``old_state``, except
    for ``LIVE_FIELDS``, which always come from ``new_state``."""

    def select(new, old):
        if _has_live_fields(new):
            live = type(new).LIVE_FIELDS
            return type(new)(**{
                f: getattr(new, f) if f in live
                else keep_unless(applied, getattr(new, f), getattr(old, f))
                for f in new._fields})
        return jnp.where(applied, new, old)

    return jax.tree.map(select, new_state, old_state, is_leaf=_has_live_fields)
