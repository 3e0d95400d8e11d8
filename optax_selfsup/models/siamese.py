"""SimSiam, BarlowTwins and rotation prediction (MMSelfSup 0.11) as Flax modules, with
their training losses. All three train a small ResNet (``backbone.*``).

- ``SimSiam``: ``neck`` a 3-layer ``NonLinearNeck`` whose last BatchNorm has no
  weight and bias, ``head.predictor`` a 2-layer ``NonLinearNeck`` without hidden
  bias and with a last bias (the config's ``'predictor'`` rule with ``fix_lr``
  selects ``head.predictor.*``); ``zero_init_residual``. Loss
  ``0.5 * (D(p1, z2) + D(p2, z1))``, ``D`` the negative cosine with the target's
  gradient stopped; forward order: encoder on view 1, on view 2, predictor on
  ``z1``, on ``z2``. (Upstream's optimizer names the encoder ``encoder.0.*`` /
  ``encoder.1.*``, an alias of ``backbone`` / ``neck``; no shipped rule tells them
  apart.)
- ``BarlowTwins``: ``neck`` a 3-layer ``NonLinearNeck`` without biases and without
  a last BatchNorm, its linears Kaiming-uniform initialised (mmcv ``Kaiming``, fan
  out, relu gain); ``head.bn`` a BatchNorm without affine parameters applied to
  each view's projection (two calls, as upstream), then
  ``losses.cross_correlation_loss`` (``lambd`` 0.0051); ``zero_init_residual``.
- ``RotationPred``: each image in four rotations (0, 90, 180, 270 degrees
  anticlockwise, labels 0-3), one forward pass of the ``4N`` images, ``ClsHead``
  ``head.fc_cls`` (Linear, normal(0, 0.01) init, zero bias), cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from .algorithms import apply_train
from .losses import cross_correlation_loss, cross_entropy, simsiam_loss
from .necks import LatentPredictHead, NonLinearNeck, kaiming_uniform
from .resnet import SmallResNet, batch_norm


class SimSiam(nn.Module):
    widths: Sequence[int] = (8, 16)
    out_channels: int = 16
    pred_hid_channels: int = 8

    def setup(self):
        self.backbone = SmallResNet(self.widths, zero_init_residual=True)
        self.neck = NonLinearNeck(self.out_channels, self.out_channels, num_layers=3,
                                  with_last_bn_affine=False)
        self.head = LatentPredictHead(self.pred_hid_channels, self.out_channels,
                                      with_bias=False, with_last_bias=True)

    def project(self, images):
        return self.neck(self.backbone(images))

    def predict(self, z):
        return self.head(z)

    def __call__(self, images):
        return self.predict(self.project(images))


def simsiam_loss_fn(model: SimSiam, params, model_state, batch):
    stats = model_state["batch_stats"]
    z1, stats = apply_train(model, params, stats, batch["views"][:, 0], SimSiam.project)
    z2, stats = apply_train(model, params, stats, batch["views"][:, 1], SimSiam.project)
    p1, stats = apply_train(model, params, stats, z1, SimSiam.predict)
    p2, stats = apply_train(model, params, stats, z2, SimSiam.predict)
    return simsiam_loss(p1, p2, z1, z2), dict(model_state, batch_stats=stats)


class LatentCrossCorrelationHead(nn.Module):
    lambd: float = 0.0051

    @nn.compact
    def __call__(self, a, b):
        bn = batch_norm("bn", affine=False)
        return cross_correlation_loss(bn(a), bn(b), self.lambd)


class BarlowTwins(nn.Module):
    widths: Sequence[int] = (8, 16)
    hid_channels: int = 32
    out_channels: int = 32

    def setup(self):
        self.backbone = SmallResNet(self.widths, zero_init_residual=True)
        self.neck = NonLinearNeck(self.hid_channels, self.out_channels, num_layers=3,
                                  with_last_bn=False, kernel_init=kaiming_uniform)
        self.head = LatentCrossCorrelationHead()

    def project(self, images):
        return self.neck(self.backbone(images))

    def loss(self, z1, z2):
        return self.head(z1, z2)

    def __call__(self, images):
        z = self.project(images)
        return self.head(z, z)


def barlowtwins_loss_fn(model: BarlowTwins, params, model_state, batch):
    stats = model_state["batch_stats"]
    z1, stats = apply_train(model, params, stats, batch["views"][:, 0], BarlowTwins.project)
    z2, stats = apply_train(model, params, stats, batch["views"][:, 1], BarlowTwins.project)
    out, updates = model.apply({"params": params, "batch_stats": stats}, z1, z2,
                               method=BarlowTwins.loss, mutable=["batch_stats"])
    return out, dict(model_state, batch_stats={**stats, **updates["batch_stats"]})


class ClsHead(nn.Module):
    num_classes: int = 4

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.normal(0.01),
                        name="fc_cls")(x)


class RotationPred(nn.Module):
    widths: Sequence[int] = (8, 16)

    def setup(self):
        self.backbone = SmallResNet(self.widths)
        self.head = ClsHead(4)

    def __call__(self, images):
        return self.head(self.backbone(images))


def rotations(images):
    """``(N, H, W, C)`` -> ``(N, 4, H, W, C)``: each image turned 0, 90, 180 and 270
    degrees anticlockwise (MMSelfSup's ``rotate``; label ``k`` = ``k`` quarter turns)."""
    return jnp.stack([jnp.rot90(images, k, axes=(1, 2)) for k in range(4)], axis=1)


def rotation_loss_fn(model: RotationPred, params, model_state, batch):
    """``batch``: ``{'images': (N, 4, H, W, C)}`` (``rotations``); labels ``0, 1, 2, 3``."""
    images = batch["images"]
    n = images.shape[0]
    logits, stats = apply_train(model, params, model_state["batch_stats"],
                                images.reshape((4 * n,) + images.shape[2:]))
    labels = jnp.tile(jnp.arange(4), n)
    return cross_entropy(logits, labels), dict(model_state, batch_stats=stats)
