"""What an optimizer step does to the gradients first: torch's norm or value clip.

``GradClip`` describes one of torch's two gradient clips, as mmcv's ``grad_clip``
(norm only) and MMEngine's ``optim_wrapper.clip_grad`` (``type='norm'`` or
``'value'``) configure them; ``clip_gradients`` applies it to the gradient leaves
that have a gradient at this update (``masks``):

- ``'norm'``: torch ``clip_grad_norm_(params, max_norm, norm_type,
  error_if_nonfinite)``: ``total`` = the ``norm_type``-norm of the per-tensor norms
  (``inf``: the largest ``|g|``), every gradient times ``min(max_norm / (total +
  1e-6), 1)``; ``total`` is what MMEngine / mmcv log as ``grad_norm``. With
  ``error_if_nonfinite=True`` a non-finite ``total`` raises (torch: RuntimeError;
  here a ``FloatingPointError`` from a host callback, surfacing as a
  ``JaxRuntimeError`` when the step's result is read: one host round trip per
  update, so it is only there when asked for);
- ``'value'``: torch ``clip_grad_value_(params, clip_value)``: every gradient
  element clamped to ``[-clip_value, clip_value]`` (nothing logged).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .clip import check_clip_arguments, clip_coefficient, norm_dtype

KINDS = ("norm", "value")


class GradClip(NamedTuple):
    """torch's gradient clip before the optimizer step (see the module docstring)."""

    kind: str = "norm"  # 'norm' (clip_grad_norm_) or 'value' (clip_grad_value_)
    max_norm: float | None = None
    norm_type: float = 2.0
    error_if_nonfinite: bool = False
    clip_value: float | None = None

    @classmethod
    def of(cls, clip) -> GradClip | None:
        """None, a ``GradClip`` or mmcv's ``(max_norm, norm_type)`` pair, checked."""
        if clip is None:
            return None
        if not isinstance(clip, GradClip):
            max_norm, norm_type = clip
            clip = cls("norm", max_norm, norm_type)
        if clip.kind == "norm":
            return clip._replace(norm_type=check_clip_arguments(clip.max_norm, clip.norm_type),
                                 error_if_nonfinite=bool(clip.error_if_nonfinite))
        if clip.kind == "value":
            c = clip.clip_value
            if isinstance(c, bool) or not isinstance(c, numbers.Real) or not 0 < c < math.inf:
                raise ValueError(f"clip_grad_value: clip_value={c!r} must be a finite number > 0")
            return clip._replace(clip_value=float(c))
        raise ValueError(f"GradClip.kind={clip.kind!r} is not one of 'norm', 'value'")


def raise_nonfinite(total, norm_type):
    import numpy as np

    if not np.isfinite(total):
        raise FloatingPointError(
            f"the total norm of order {float(norm_type)} of the gradients is non-finite "
            f"({float(total)}), so it cannot be clipped (clip_grad error_if_nonfinite=True, "
            "as torch's clip_grad_norm_ raises)")


def clip_gradients(clip: GradClip, grads: list, masks: list):
    """``(clipped grads, pre-clip total norm or None, per-leaf 2-norms of the clipped
    grads or Nones)``. The per-leaf norms come free with a 2-norm clip (a rule that
    needs ``||g||``, LARS, reads them instead of another pass over the gradient)."""
    if clip.kind == "value":
        c = clip.clip_value
        return [jnp.clip(g, -c, c) for g in grads], None, [None] * len(grads)
    total, coef, norms = clip_coefficient(grads, masks, clip.max_norm, clip.norm_type)
    if clip.error_if_nonfinite:
        jax.debug.callback(raise_nonfinite, total, clip.norm_type)
    grads = [g * coef.astype(g.dtype) for g in grads]
    leaf_norms = [n * coef for n in norms] if clip.norm_type == 2.0 else [None] * len(grads)
    return grads, total.astype(norm_dtype(grads)), leaf_norms
