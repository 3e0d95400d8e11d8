"""SimMIM (MMSelfSup 0.11 ``SimMIM``) on the tiny Swin of ``swin.py``, and its loss.

- ``SimMIMNeck``: ``decoder = Sequential(Conv2d(C, stride**2 * 3, 1), PixelShuffle(stride))``
  (``neck.decoder.0``): the last feature map back to image resolution.
- ``simmim_mask``: upstream's ``SimMIMMaskGenerator``: the image is cut into
  ``mask_patch_size`` squares, ``ceil(count * mask_ratio)`` of them drawn without
  replacement are masked, and the mask is repeated to the model's patch grid
  (``mask_patch_size // model_patch_size`` per side). Upstream masks 60% of
  32-pixel squares of a 192-pixel image for a patch-4 Swin; here 60% of 4-pixel
  squares of a 16-pixel image for a patch-2 Swin.
- ``simmim_loss_fn``: encoder on the image with the mask, decoder, then
  ``losses.simmim_loss`` (L1 over the masked pixels, divided by the channels).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from .losses import simmim_loss
from .necks import linear_init
from .swin import SimMIMSwinTransformer


def pixel_shuffle(x, r: int):
    """``torch.nn.PixelShuffle(r)`` in NHWC: channel ``c * r * r + i * r + j`` of pixel
    ``(h, w)`` goes to channel ``c`` of pixel ``(h * r + i, w * r + j)``."""
    n, h, w, crr = x.shape
    c = crr // (r * r)
    x = x.reshape(n, h, w, c, r, r).transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(n, h * r, w * r, c)


class SimMIMNeck(nn.Module):
    encoder_stride: int
    out_channels: int = 3

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        bound = fan_in ** -0.5
        x = nn.Conv(self.encoder_stride ** 2 * self.out_channels, (1, 1), kernel_init=linear_init,
                    bias_init=lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound,
                                                                              bound),
                    name="decoder_0")(x)
        return pixel_shuffle(x, self.encoder_stride)


class SimMIM(nn.Module):
    image_size: int = 16
    patch_size: int = 2
    mask_patch_size: int = 4
    mask_ratio: float = 0.6

    def setup(self):
        self.backbone = SimMIMSwinTransformer(self.image_size, self.patch_size)
        self.neck = SimMIMNeck(self.backbone.encoder_stride)

    def features(self, images):
        """The unmasked encoder's last feature map, averaged over positions."""
        return jnp.mean(self.backbone(images, None), axis=(1, 2))

    def __call__(self, images, mask):
        return self.neck(self.backbone(images, mask))


def simmim_mask(key, batch: int, image_size: int, mask_patch_size: int = 4,
                model_patch_size: int = 2, mask_ratio: float = 0.6):
    """``(batch, image_size // model_patch_size, ...)`` int32 masks (1 = masked)."""
    if image_size % mask_patch_size or mask_patch_size % model_patch_size:
        raise ValueError(f"image size {image_size} must be a multiple of the mask patch size "
                         f"{mask_patch_size}, itself a multiple of the model patch size "
                         f"{model_patch_size}")
    side = image_size // mask_patch_size
    count = side * side
    masked = math.ceil(count * mask_ratio)
    order = jax.vmap(lambda k: jax.random.permutation(k, count))(jax.random.split(key, batch))
    mask = jnp.zeros((batch, count), jnp.int32)
    mask = jax.vmap(lambda m, o: m.at[o[:masked]].set(1))(mask, order)
    scale = mask_patch_size // model_patch_size
    mask = mask.reshape(batch, side, side)
    return jnp.repeat(jnp.repeat(mask, scale, axis=1), scale, axis=2)


def simmim_loss_fn(model: SimMIM, params, model_state, batch):
    """``batch``: ``{'images': (N, H, W, C), 'mask': (N, H/patch, W/patch)}``."""
    reconstruction = model.apply({"params": params}, batch["images"], batch["mask"])
    return simmim_loss(batch["images"], reconstruction, batch["mask"], model.patch_size), \
        model_state
