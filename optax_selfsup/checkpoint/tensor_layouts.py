"""Tensor layouts: torch's standard layers <-> Flax's (Linen and NNX), one tensor at a time.

The one place that knows how a torch tensor is laid out in Flax. A Flax leaf is
recognised by its name (the last part of its dotted key path) and its rank:

- ``kernel`` of rank 2 is a ``Dense``: torch ``Linear.weight`` ``(out, in)`` -> ``(in, out)``;
- ``kernel`` of rank 3, 4 or 5 is a ``Conv``: torch ``Conv1d`` / ``Conv2d`` / ``Conv3d``
  ``.weight`` ``(O, I, *spatial)`` -> ``(*spatial, I, O)`` (``(H, W, I, O)`` in 2-d);
- every other leaf keeps its shape: ``scale`` / ``bias`` of ``BatchNorm``, ``LayerNorm``
  and ``GroupNorm`` (torch ``weight`` / ``bias``), biases, ``Embed.embedding`` (torch
  ``Embedding.weight``, ``(num, features)`` in both), tokens, BatchNorm statistics.

Grouped and depthwise convolutions (``feature_group_count``) follow the ``Conv`` rule
(torch ``(O, I/groups, ...)``). Not covered: transposed convolutions
(``ConvTranspose``, whose torch weight is ``(I, O, ...)``) and multi-dimensional
``DenseGeneral`` / attention kernels, which have no torch tensor of the same
meaning; convert those yourself.

The same conversion applies to every tensor shaped like the parameter: an optimizer's
``momentum_buffer``, ``exp_avg``, ``exp_avg_sq`` ... of a conv weight are laid out
as the weight (``from_torch_checkpoint(..., convert=torch_to_flax_layout)``).
Values keep their dtype; torch tensors are detached and moved to the CPU first.
"""

from __future__ import annotations

import numpy as np


def to_numpy(value) -> np.ndarray:
    """A torch tensor (detached, on the CPU; bfloat16 as float32) or array as a NumPy array."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    return np.asarray(value)


def _is_kernel(flax_name: str) -> bool:
    return flax_name.rsplit(".", 1)[-1] == "kernel"


def torch_to_flax_layout(flax_name: str, value) -> np.ndarray:
    """``value`` (a torch tensor or array in torch's layout) in the layout of the Flax
    leaf ``flax_name`` (its dotted path, e.g. ``params.backbone.conv1.kernel``): a
    ``kernel`` is transposed (Dense ``(out, in) -> (in, out)``; Conv ``(O, I, *spatial)
    -> (*spatial, I, O)``), everything else keeps its shape. See the module docstring."""
    value = to_numpy(value)
    if _is_kernel(flax_name):
        if value.ndim == 2:
            return value.T
        if value.ndim >= 3:
            return value.transpose(*range(2, value.ndim), 1, 0)
    return value


def flax_to_torch_layout(flax_name: str, value) -> np.ndarray:
    """The inverse of ``torch_to_flax_layout``: the Flax leaf ``flax_name``'s ``value``
    in torch's layout."""
    value = np.asarray(value)
    if _is_kernel(flax_name):
        if value.ndim == 2:
            return value.T
        if value.ndim >= 3:
            return value.transpose(value.ndim - 1, value.ndim - 2, *range(value.ndim - 2))
    return value

