"""SimCLR, BYOL and MAE as Flax modules with their training losses.

Each ``*_loss(model, params, model_state, batch)`` returns ``(loss, new_model_state)``
and is what one training iteration differentiates (``jax.value_and_grad(...,
has_aux=True)``). ``model_state`` holds the BatchNorm statistics
(``batch_stats``) and, for BYOL, the momentum target (``target``: its own
``params`` and ``batch_stats``). Batches are dicts of NHWC arrays:

- SimCLR ``{'views': (N, 2, H, W, C)}``: both views of an image are consecutive
  rows of the ``2N`` batch (upstream stacks them that way), one forward pass;
- BYOL ``{'views': (N, 2, H, W, C)}``: online on view 1, online on view 2, target
  on view 1, target on view 2 (each a forward pass of its own, so BatchNorm
  statistics are per view), loss ``2 * (L(p1, t2) + L(p2, t1))``;
- MAE ``{'images': (N, H, W, C), 'noise': (N, L)}``.

BatchNorm is in training mode everywhere (batch statistics; running averages
updated), as in an MMSelfSup training run.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from .losses import byol_loss, mae_loss, momentum_update, nt_xent_loss
from .necks import LatentPredictHead, NonLinearNeck
from .resnet import SmallResNet
from .vit import MAEPretrainDecoder, MAEViT


class SimCLR(nn.Module):
    widths: Sequence[int] = (8, 16)
    hid_channels: int = 16
    out_channels: int = 8

    @nn.compact
    def __call__(self, images):
        features = SmallResNet(self.widths, name="backbone")(images)
        return NonLinearNeck(self.hid_channels, self.out_channels, name="neck")(features)


class BYOL(nn.Module):
    """Online network (``backbone`` + ``neck``) and the ``head``'s predictor. The target
    network is a copy of ``backbone`` + ``neck`` (``project`` applied with its variables)."""

    widths: Sequence[int] = (8, 16)
    hid_channels: int = 16
    out_channels: int = 8

    def setup(self):
        self.backbone = SmallResNet(self.widths)
        self.neck = NonLinearNeck(self.hid_channels, self.out_channels, with_bias=True,
                                  with_last_bn=False)
        self.head = LatentPredictHead(self.hid_channels, self.out_channels)

    def project(self, images):
        return self.neck(self.backbone(images))

    def predict(self, projection):
        return self.head(projection)

    def __call__(self, images):
        return self.predict(self.project(images))


class MAE(nn.Module):
    image_size: int = 16
    patch_size: int = 4
    dims: int = 16
    depth: int = 2
    decoder_dims: int = 8
    decoder_depth: int = 1
    num_heads: int = 2
    mask_ratio: float = 0.75

    @nn.compact
    def __call__(self, images, noise):
        latent, ids_restore, mask = MAEViT(
            self.image_size, self.patch_size, self.dims, self.depth, self.num_heads,
            mask_ratio=self.mask_ratio, name="backbone")(images, noise)
        prediction = MAEPretrainDecoder(
            (self.image_size // self.patch_size) ** 2, self.patch_size, images.shape[-1],
            self.decoder_dims, self.decoder_depth, self.num_heads, name="neck")(
                latent, ids_restore)
        return prediction, mask


def _pairs(views):
    n, two = views.shape[:2]
    return views.reshape((n * two,) + views.shape[2:])


def simclr_loss(model: SimCLR, params, model_state, batch, temperature: float = 0.1):
    z, updates = model.apply({"params": params, **model_state}, _pairs(batch["views"]),
                             mutable=["batch_stats"])
    return nt_xent_loss(z, temperature), {**model_state, **updates}


def byol_loss_fn(model: BYOL, params, model_state, batch):
    stats = model_state["batch_stats"]
    target = model_state["target"]
    v1, v2 = batch["views"][:, 0], batch["views"][:, 1]

    def run(variables, x, method):
        out, upd = model.apply(variables, x, method=method, mutable=["batch_stats"])
        return out, upd["batch_stats"]

    def merge(old, new):
        return {**old, **new}

    online = dict(params=params, batch_stats=stats)
    p1, new = run(online, v1, BYOL.project)
    online["batch_stats"] = merge(online["batch_stats"], new)
    p2, new = run(online, v2, BYOL.project)
    online["batch_stats"] = merge(online["batch_stats"], new)
    t1, tstats = run(target, v1, BYOL.project)
    t2, tstats = run(dict(target, batch_stats=merge(target["batch_stats"], tstats)), v2,
                     BYOL.project)
    target_stats = merge(target["batch_stats"], tstats)
    q1, new = run(online, p1, BYOL.predict)
    online["batch_stats"] = merge(online["batch_stats"], new)
    q2, new = run(online, p2, BYOL.predict)
    online["batch_stats"] = merge(online["batch_stats"], new)
    loss = 2.0 * (byol_loss(q1, t2) + byol_loss(q2, t1))
    target = dict(params=target["params"], batch_stats=jax.lax.stop_gradient(target_stats))
    return loss, dict(batch_stats=online["batch_stats"], target=target)


def byol_update_target(model_state, params, momentum):
    """After an iteration: the target's parameters move towards the online ones."""
    target = model_state["target"]
    online = {k: params[k] for k in target["params"]}
    return dict(model_state, target=dict(
        target, params=momentum_update(target["params"], online, momentum)))


def mae_loss_fn(model: MAE, params, model_state, batch, norm_pix: bool = True):
    prediction, mask = model.apply({"params": params}, batch["images"], batch["noise"])
    return mae_loss(prediction, batch["images"], mask, model.patch_size, norm_pix), model_state


def apply_train(model: nn.Module, params, batch_stats, x, method=None):
    """``model`` (or its ``method``) on ``x`` in training mode: ``(output, batch_stats)``,
    the BatchNorm running statistics of the modules it ran updated (the others kept).
    Each call normalises with the statistics of its own batch, like one torch forward."""
    out, updates = model.apply({"params": params, "batch_stats": batch_stats}, x,
                               method=method, mutable=["batch_stats"])
    return out, {**batch_stats, **updates["batch_stats"]}
