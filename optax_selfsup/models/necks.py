"""MMSelfSup 0.11's necks in Flax Linen, named like upstream's torch modules.

- ``NonLinearNeck``: ``fc0 - bn0 - [relu - fc{i} - bn{i}]`` for ``i = 1 ..
  num_layers-1`` (torch: ``nn.Linear`` named ``fc{i}``, ``BatchNorm1d`` named
  ``bn{i}``). The last layer has a bias only when ``with_last_bias``, a BatchNorm
  only when ``with_last_bn``, and that BatchNorm has no weight and bias when
  ``with_last_bn_affine=False`` (SimCLR: no biases, last BN on; BYOL: biases,
  last BN off; SimSiam: 3 layers, last BN without affine). Flax names ``fc0`` /
  ``bn0`` map to ``neck.fc0.weight`` / ``neck.bn0.weight``.
- ``LinearNeck`` (MoCo v1): one ``nn.Linear`` named ``fc``.
- ``MoCoV2Neck``: ``mlp = Sequential(Linear, ReLU, Linear)``: ``mlp.0``, ``mlp.2``.
- ``SwAVNeck``: ``projection_neck = Sequential(Linear, BN, ReLU, Linear)`` whose
  BatchNorm is also registered first as ``self.bn``, so torch's ``named_parameters``
  calls it ``neck.bn`` (``neck.projection_neck.0`` and ``.3`` are the linears);
  the output is L2-normalised (``with_l2norm``).
- ``LatentPredictHead`` (BYOL, SimSiam) holds a ``NonLinearNeck`` named
  ``predictor`` (``head.predictor.fc0.weight``); its loss is ``losses.byol_loss``.

The average pool of upstream's ``with_avg_pool`` is done by the backbone here.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from .losses import l2_normalize
from .resnet import batch_norm

# torch.nn.Linear's default init draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in))
linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
# mmcv's Kaiming init with distribution='uniform' (mode fan_out, relu gain), BarlowTwins' neck
kaiming_uniform = nn.initializers.variance_scaling(2.0, "fan_out", "uniform")


def _torch_bias_init(fan_in: int):
    """``nn.Linear``'s default bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = fan_in ** -0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype,
                                                                    -bound, bound)


def torch_linear(features: int, fan_in: int, name: str, use_bias: bool = True) -> nn.Dense:
    """``torch.nn.Linear(fan_in, features)`` with torch's default initialisation."""
    return nn.Dense(features, use_bias=use_bias, kernel_init=linear_init,
                    bias_init=_torch_bias_init(fan_in), name=name)


class NonLinearNeck(nn.Module):
    hid_channels: int
    out_channels: int
    num_layers: int = 2
    with_bias: bool = False
    with_last_bn: bool = True
    with_last_bias: bool = False
    with_last_bn_affine: bool = True
    kernel_init: object = linear_init

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(self.hid_channels, use_bias=self.with_bias, kernel_init=self.kernel_init,
                     name="fc0")(x)
        x = batch_norm("bn0")(x)
        for i in range(1, self.num_layers):
            last = i == self.num_layers - 1
            width = self.out_channels if last else self.hid_channels
            x = nn.relu(x)
            x = nn.Dense(width, use_bias=self.with_last_bias if last else self.with_bias,
                         kernel_init=self.kernel_init, name=f"fc{i}")(x)
            if not last or self.with_last_bn:
                affine = self.with_last_bn_affine or not last
                x = batch_norm(f"bn{i}", affine=affine)(x)
        return x


class LatentPredictHead(nn.Module):
    """BYOL's / SimSiam's head: ``predictor`` (a NonLinearNeck) applied to the online
    projection. The defaults are BYOL's predictor (biases, no last BN); SimSiam's has
    no hidden bias and a last bias (``with_bias=False, with_last_bias=True``)."""

    hid_channels: int
    out_channels: int
    with_bias: bool = True
    with_last_bias: bool = False

    @nn.compact
    def __call__(self, x):
        return NonLinearNeck(self.hid_channels, self.out_channels, with_bias=self.with_bias,
                             with_last_bn=False, with_last_bias=self.with_last_bias,
                             name="predictor")(x)


class LinearNeck(nn.Module):
    """MoCo v1's neck: ``fc`` (``nn.Linear`` with bias)."""

    out_channels: int

    @nn.compact
    def __call__(self, x):
        return torch_linear(self.out_channels, x.shape[-1], "fc")(x)


class MoCoV2Neck(nn.Module):
    """MoCo v2's neck: ``mlp.0`` (Linear) - ReLU - ``mlp.2`` (Linear), biases on."""

    hid_channels: int
    out_channels: int

    @nn.compact
    def __call__(self, x):
        x = nn.relu(torch_linear(self.hid_channels, x.shape[-1], "mlp_0")(x))
        return torch_linear(self.out_channels, self.hid_channels, "mlp_2")(x)


class SwAVNeck(nn.Module):
    """SwAV's neck: ``projection_neck.0`` (Linear) - ``bn`` - ReLU - ``projection_neck.3``
    (Linear), then ``x / max(||x||, 1e-12)`` per row (``with_l2norm``)."""

    hid_channels: int
    out_channels: int
    with_l2norm: bool = True

    @nn.compact
    def __call__(self, x):
        x = torch_linear(self.hid_channels, x.shape[-1], "projection_neck_0")(x)
        x = nn.relu(batch_norm("bn")(x))
        x = torch_linear(self.out_channels, self.hid_channels, "projection_neck_3")(x)
        if self.with_l2norm:
            x = l2_normalize(x)
        return x
