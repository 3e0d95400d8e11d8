"""SwAV (MMSelfSup 0.11 ``SwAV``) as a Flax module and its multi-crop training loss.

Names: ``backbone.*`` (ResNet, ``zero_init_residual``), ``neck.projection_neck.0``
/ ``neck.bn`` / ``neck.projection_neck.3`` (``SwAVNeck``), ``head.prototypes.weight``
(``SwAVHead``'s ``nn.Linear(feat_dim, num_prototypes, bias=False)``), so the
config's ``frozen_layers_cfg=dict(prototypes=...)`` freezes exactly the prototypes.

One iteration, as upstream's ``forward_train`` and ``SwAVHead.forward``:

1. the prototypes are L2-normalised in place, each prototype (a row of torch's
   ``(num_prototypes, feat_dim)`` weight) to unit length: ``normalize_prototypes``
   returns the parameters with that done; the training step applies it before the
   forward pass, so the gradient, the optimizer and the stored parameters all see
   the normalised prototypes (also while they are frozen);
2. the crops of each resolution go through the backbone together, one forward
   pass per resolution (so BatchNorm statistics are per resolution); the neck sees
   all crops at once and L2-normalises its output;
3. scores ``z . prototypes``; ``losses.swav_loss`` with ``num_crops=(2, 6)``,
   ``crops_for_assign=(0, 1)``, temperature 0.1, Sinkhorn epsilon 0.05, 3
   iterations.

Upstream's queue (``SwAVHook``, from epoch 15 of 200) is not used: the shipped
config has no ``SwAVHook`` and a demo run is far shorter.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from .algorithms import apply_train
from .losses import l2_normalize, swav_loss
from .necks import SwAVNeck, linear_init
from .resnet import SmallResNet


class SwAVHead(nn.Module):
    num_prototypes: int = 32

    @nn.compact
    def __call__(self, z):
        return nn.Dense(self.num_prototypes, use_bias=False, kernel_init=linear_init,
                        name="prototypes")(z)


class SwAV(nn.Module):
    widths: Sequence[int] = (8, 16)
    hid_channels: int = 16
    feat_dim: int = 8
    num_prototypes: int = 32
    num_crops: Sequence[int] = (2, 6)
    temperature: float = 0.1
    epsilon: float = 0.05

    def setup(self):
        self.backbone = SmallResNet(self.widths, zero_init_residual=True)
        self.neck = SwAVNeck(self.hid_channels, self.feat_dim)
        self.head = SwAVHead(self.num_prototypes)

    def project(self, features):
        return self.neck(features)

    def __call__(self, images):
        return self.head(self.neck(self.backbone(images)))


def normalize_prototypes(params):
    """``params`` with every prototype at unit L2 norm (``x / max(||x||, 1e-12)``); the
    Flax kernel is ``(feat_dim, num_prototypes)``, so each column."""
    kernel = params["head"]["prototypes"]["kernel"]
    kernel = l2_normalize(kernel, axis=0)
    return {**params, "head": {**params["head"], "prototypes": {"kernel": kernel}}}


def _crop_major(views):
    """``(N, V, H, W, C)`` -> ``(V*N, H, W, C)``: crop 0 of every image, then crop 1, ..."""
    return jnp.swapaxes(views, 0, 1).reshape((-1,) + views.shape[2:])


def swav_loss_fn(model: SwAV, params, model_state, batch):
    """``batch``: ``{'crops': [(N, 2, S, S, C), (N, 6, s, s, C)]}``, one array per
    resolution, in ``num_crops`` order. ``params`` are expected normalised
    (``normalize_prototypes``)."""
    stats = model_state["batch_stats"]
    features = []
    for views in batch["crops"]:
        out, stats = apply_train(model, params, stats, _crop_major(views),
                                 lambda m, x: m.backbone(x))
        features.append(out)
    z, stats = apply_train(model, params, stats, jnp.concatenate(features, 0), SwAV.project)
    scores = model.apply({"params": params}, z, method=lambda m, x: m.head(x))
    loss = swav_loss(scores, tuple(model.num_crops), (0, 1), model.temperature, model.epsilon)
    return loss, dict(model_state, batch_stats=stats)
