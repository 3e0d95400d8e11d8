"""A small ResNet backbone in Flax Linen, named like MMSelfSup's (mmcls) ResNet.

Module names are chosen so that ``optax_selfsup.names.DEFAULT_NAME_MAP`` turns the
Flax key paths into the torch names of MMSelfSup 0.11's ``ResNet`` backbone:
``conv1`` / ``bn1`` stem, ``layer{s}_{b}`` blocks (``layer1.0``) with ``conv1``,
``bn1``, ``conv2``, ``bn2`` and ``downsample_0`` (1x1 conv) / ``downsample_1``
(BatchNorm), so ``params.backbone.layer2_0.downsample_1.scale`` reads
``backbone.layer2.0.downsample.1.weight``.

Inputs are NHWC (Flax's layout); convolutions use torch's explicit symmetric
padding (``padding=k//2``) so stride-2 layers see the same pixels as torch's.
BatchNorm follows ``torch.nn.BatchNorm2d`` (eps 1e-5, running average
``0.9*old + 0.1*batch``) except that Flax updates ``var`` with the biased batch
variance where torch uses the unbiased one (training uses batch statistics on
both sides, so this only changes the stored running variance).

Differences from MMSelfSup's ResNet-50, kept on purpose for a model that trains
in seconds on a CPU: BasicBlocks (ResNet-18 style), a 3x3 stride-1 stem without
max-pooling, few channels. ``zero_init_residual`` (SimCLR's setting) is
available but off by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


def batch_norm(name: str, zero_init: bool = False, affine: bool = True) -> nn.BatchNorm:
    """``torch.nn.BatchNorm{1,2}d`` in train mode: batch statistics, eps 1e-5, momentum 0.1;
    ``affine=False``: no weight and bias (only the running statistics)."""
    return nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5,
                        use_fast_variance=False, name=name, use_scale=affine, use_bias=affine,
                        scale_init=nn.initializers.zeros if zero_init else nn.initializers.ones)


def conv(features: int, kernel: int, stride: int, name: str) -> nn.Conv:
    """``torch.nn.Conv2d(bias=False, padding=kernel // 2)``; kaiming-normal (fan_out) init."""
    pad = kernel // 2
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding=((pad, pad), (pad, pad)), use_bias=False, name=name,
                   kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"))


class BasicBlock(nn.Module):
    """conv3x3-bn-relu-conv3x3-bn, plus the (downsampled) input, relu."""

    features: int
    stride: int = 1
    zero_init_residual: bool = False

    @nn.compact
    def __call__(self, x):
        out = nn.relu(batch_norm("bn1")(conv(self.features, 3, self.stride, "conv1")(x)))
        out = batch_norm("bn2", self.zero_init_residual)(
            conv(self.features, 3, 1, "conv2")(out))
        if self.stride != 1 or x.shape[-1] != self.features:
            x = batch_norm("downsample_1")(conv(self.features, 1, self.stride, "downsample_0")(x))
        return nn.relu(out + x)


class SmallResNet(nn.Module):
    """Stem (conv1, bn1, relu), stages ``layer1..`` of BasicBlocks, global average pool.

    ``widths[s]`` channels and ``blocks[s]`` blocks in stage ``s``; stages after the
    first halve the resolution. Returns the pooled ``(N, widths[-1])`` features.
    """

    widths: Sequence[int] = (8, 16)
    blocks: Sequence[int] = (1, 1)
    stem_width: int = 8
    zero_init_residual: bool = False

    @nn.compact
    def __call__(self, x):
        x = nn.relu(batch_norm("bn1")(conv(self.stem_width, 3, 1, "conv1")(x)))
        for s, (width, count) in enumerate(zip(self.widths, self.blocks)):
            for b in range(count):
                stride = 2 if (s > 0 and b == 0) else 1
                x = BasicBlock(width, stride, self.zero_init_residual,
                               name=f"layer{s + 1}_{b}")(x)
        return jnp.mean(x, axis=(1, 2))
