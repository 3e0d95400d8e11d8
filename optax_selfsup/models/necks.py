"""MMSelfSup 0.11's ``NonLinearNeck`` in Flax Linen, and the BYOL predictor head.

``NonLinearNeck``: ``fc0 - bn0 - [relu - fc{i} - bn{i}]`` for ``i = 1 .. num_layers-1``
(torch: ``nn.Linear`` named ``fc{i}``, ``BatchNorm1d`` named ``bn{i}``). The
last layer has a bias only when ``with_last_bias`` and a BatchNorm only when
``with_last_bn`` (SimCLR: no biases, last BN on; BYOL: biases, last BN off).
Flax names ``fc0`` / ``bn0`` map to ``neck.fc0.weight`` / ``neck.bn0.weight``.
The average pool of upstream's ``with_avg_pool`` is done by the backbone here.

``LatentPredictHead`` holds a ``NonLinearNeck`` named ``predictor``
(``head.predictor.fc0.weight``); its loss is in ``losses.byol_loss``.
"""

from __future__ import annotations

import flax.linen as nn

from .resnet import batch_norm

# torch.nn.Linear's default init draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in))
linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class NonLinearNeck(nn.Module):
    hid_channels: int
    out_channels: int
    num_layers: int = 2
    with_bias: bool = False
    with_last_bn: bool = True
    with_last_bias: bool = False

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(self.hid_channels, use_bias=self.with_bias, kernel_init=linear_init,
                     name="fc0")(x)
        x = batch_norm("bn0")(x)
        for i in range(1, self.num_layers):
            last = i == self.num_layers - 1
            width = self.out_channels if last else self.hid_channels
            x = nn.relu(x)
            x = nn.Dense(width, use_bias=self.with_last_bias if last else self.with_bias,
                         kernel_init=linear_init, name=f"fc{i}")(x)
            if not last or self.with_last_bn:
                x = batch_norm(f"bn{i}")(x)
        return x


class LatentPredictHead(nn.Module):
    """BYOL's head: ``predictor`` (a NonLinearNeck) applied to the online projection."""

    hid_channels: int
    out_channels: int

    @nn.compact
    def __call__(self, x):
        return NonLinearNeck(self.hid_channels, self.out_channels, with_bias=True,
                             with_last_bn=False, name="predictor")(x)
