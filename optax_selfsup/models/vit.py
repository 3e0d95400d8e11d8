"""A tiny MAE (ViT encoder + decoder) in Flax Linen, named like MMSelfSup 0.11.

Torch names (after ``DEFAULT_NAME_MAP``), as MMSelfSup 0.11's ``MAEViT`` (mmcls
``VisionTransformer``) and ``MAEPretrainDecoder`` spell them:

- encoder ``backbone.``: ``patch_embed.projection`` (a patch-size conv),
  ``cls_token``, ``pos_embed``, ``layers.{i}.ln1``, ``layers.{i}.attn.qkv``,
  ``layers.{i}.attn.proj``, ``layers.{i}.ln2``, ``layers.{i}.ffn.layers.0.0`` and
  ``layers.{i}.ffn.layers.1`` (mmcv ``FFN``), final norm ``ln1``;
- decoder ``neck.``: ``decoder_embed``, ``mask_token``, ``decoder_pos_embed``,
  ``decoder_blocks.{i}.*`` (same layer as the encoder's), final norm ``ln1``
  (upstream builds it with ``build_norm_layer(..., postfix=1)``, so its state-dict
  name is ``neck.ln1``; ``decoder_norm`` is only a Python property), ``decoder_pred``.

The layer is pre-norm: ``x + attn(ln1(x))`` then ``x + ffn(ln2(x))``; attention
scales by ``head_dim**-0.5``; GELU is the exact (erf) one; LayerNorm eps 1e-6.

One deliberate difference: upstream freezes ``pos_embed`` / ``decoder_pos_embed``
(fixed sin-cos, ``requires_grad=False``). Here they start from the same sin-cos
table but are trained, so the MAE recipe's ``pos_embed`` weight-decay rule
selects a tensor that moves.

Masking takes the per-patch ``noise`` as an input (``losses.mae_noise`` draws it
from a key): patches with the smallest noise are kept, as upstream's
``random_masking`` does with ``torch.rand``.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

xavier = nn.initializers.xavier_uniform()


def sincos_position_embedding(grid: int, dims: int) -> np.ndarray:
    """``(1, 1 + grid**2, dims)``: a zero row for the cls token, then sin/cos of the
    column and row indices at ``dims//4`` frequencies ``10000**(-k/(dims//4))``
    (MMSelfSup's ``build_2d_sincos_position_embedding``)."""
    if dims % 4:
        raise ValueError(f"sin-cos position embedding needs dims divisible by 4, got {dims}")
    quarter = dims // 4
    omega = 1.0 / 10000.0 ** (np.arange(quarter) / quarter)
    cols, rows = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    out_w = cols.reshape(-1)[:, None] * omega[None]
    out_h = rows.reshape(-1)[:, None] * omega[None]
    table = np.concatenate([np.sin(out_w), np.cos(out_w), np.sin(out_h), np.cos(out_h)], 1)
    return np.concatenate([np.zeros((1, dims)), table], 0)[None].astype(np.float32)


def layer_norm(name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=1e-6, use_fast_variance=False, name=name)


class Attention(nn.Module):
    num_heads: int

    @nn.compact
    def __call__(self, x):
        n, length, dims = x.shape
        head = dims // self.num_heads
        qkv = nn.Dense(3 * dims, kernel_init=xavier, name="qkv")(x)
        qkv = qkv.reshape(n, length, 3, self.num_heads, head).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = nn.softmax(jnp.einsum("bhqd,bhkd->bhqk", q, k) * head ** -0.5, axis=-1)
        out = jnp.einsum("bhqk,bhkd->bqhd", weights, v).reshape(n, length, dims)
        return nn.Dense(dims, kernel_init=xavier, name="proj")(out)


class FFNInput(nn.Module):
    """mmcv FFN's ``layers.0``: ``Sequential(Linear, GELU, Dropout)``; the Linear is ``0``."""

    hidden: int
    kernel_init: object = xavier

    @nn.compact
    def __call__(self, x):
        return nn.gelu(nn.Dense(self.hidden, kernel_init=self.kernel_init, name="0")(x),
                       approximate=False)


class FFN(nn.Module):
    """mmcv ``FFN``: ``layers.0`` (Linear + GELU) then ``layers.1`` (Linear back to ``dims``)."""

    hidden: int
    dims: int
    kernel_init: object = xavier

    @nn.compact
    def __call__(self, x):
        x = FFNInput(self.hidden, self.kernel_init, name="layers_0")(x)
        return nn.Dense(self.dims, kernel_init=self.kernel_init, name="layers_1")(x)


class TransformerEncoderLayer(nn.Module):
    num_heads: int
    mlp_hidden: int

    @nn.compact
    def __call__(self, x):
        x = x + Attention(self.num_heads, name="attn")(layer_norm("ln1")(x))
        return x + FFN(self.mlp_hidden, x.shape[-1], name="ffn")(layer_norm("ln2")(x))


def patchify(images, patch: int):
    """NHWC images -> ``(N, L, patch*patch*C)``, patches row-major, pixels (row, col, channel)
    (MMSelfSup's ``MAEPretrainHead.patchify`` order)."""
    n, h, w, c = images.shape
    x = images.reshape(n, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, (h // patch) * (w // patch), patch * patch * c)


class MAEViT(nn.Module):
    """Encoder: patch embedding + pos embedding, keep the lowest-noise patches, prepend the
    cls token, transformer layers, final LayerNorm. Returns ``(latent, ids_restore, mask)``."""

    image_size: int = 16
    patch_size: int = 4
    dims: int = 16
    depth: int = 2
    num_heads: int = 2
    mlp_ratio: int = 4
    mask_ratio: float = 0.75

    @nn.compact
    def __call__(self, images, noise):
        grid = self.image_size // self.patch_size
        x = PatchEmbed(self.dims, self.patch_size, name="patch_embed")(images)
        pos = self.param("pos_embed", lambda key: jnp.asarray(
            sincos_position_embedding(grid, self.dims)))
        cls = self.param("cls_token", nn.initializers.normal(0.02), (1, 1, self.dims))
        x = x + pos[:, 1:]
        n, length, _ = x.shape
        keep = int(length * (1 - self.mask_ratio))
        ids_shuffle = jnp.argsort(noise, axis=1)
        ids_restore = jnp.argsort(ids_shuffle, axis=1)
        x = jnp.take_along_axis(x, ids_shuffle[:, :keep, None], axis=1)
        mask = jnp.take_along_axis(
            (jnp.arange(length) >= keep).astype(x.dtype)[None].repeat(n, 0), ids_restore, axis=1)
        x = jnp.concatenate([jnp.broadcast_to(cls + pos[:, :1], (n, 1, self.dims)), x], axis=1)
        for i in range(self.depth):
            x = TransformerEncoderLayer(self.num_heads, self.mlp_ratio * self.dims,
                                        name=f"layers_{i}")(x)
        return layer_norm("ln1")(x), ids_restore, mask


class PatchEmbed(nn.Module):
    """mmcv ``PatchEmbed``: a conv named ``projection`` with kernel = stride = patch size."""

    dims: int
    patch_size: int

    @nn.compact
    def __call__(self, images):
        p = self.patch_size
        x = nn.Conv(self.dims, (p, p), strides=(p, p), padding="VALID", kernel_init=xavier,
                    name="projection")(images)
        return x.reshape(x.shape[0], -1, self.dims)


class MAEPretrainDecoder(nn.Module):
    """Embed, fill the masked positions with ``mask_token``, unshuffle, add pos embedding,
    transformer layers, LayerNorm ``ln1``, per-patch pixel prediction (cls token dropped)."""

    num_patches: int = 16
    patch_size: int = 4
    in_chans: int = 3
    dims: int = 8
    depth: int = 1
    num_heads: int = 2
    mlp_ratio: int = 4

    @nn.compact
    def __call__(self, latent, ids_restore):
        x = nn.Dense(self.dims, kernel_init=xavier, name="decoder_embed")(latent)
        mask_token = self.param("mask_token", nn.initializers.normal(0.02), (1, 1, self.dims))
        pos = self.param("decoder_pos_embed", lambda key: jnp.asarray(
            sincos_position_embedding(int(round(self.num_patches ** 0.5)), self.dims)))
        n, length = ids_restore.shape
        tokens = jnp.concatenate(
            [x[:, 1:], jnp.broadcast_to(mask_token, (n, length + 1 - x.shape[1], self.dims))], 1)
        tokens = jnp.take_along_axis(tokens, ids_restore[:, :, None], axis=1)
        x = jnp.concatenate([x[:, :1], tokens], axis=1) + pos
        for i in range(self.depth):
            x = TransformerEncoderLayer(self.num_heads, self.mlp_ratio * self.dims,
                                        name=f"decoder_blocks_{i}")(x)
        x = layer_norm("ln1")(x)
        x = nn.Dense(self.patch_size ** 2 * self.in_chans, kernel_init=xavier,
                     name="decoder_pred")(x)
        return x[:, 1:]
