"""A tiny Swin Transformer for SimMIM (MMSelfSup 0.11 ``SimMIMSwinTransformer``, on
mmcls 0.x's ``SwinTransformer``), in Flax Linen, named like upstream.

Torch names (after ``DEFAULT_NAME_MAP``), under ``backbone.``:
``patch_embed.projection`` (patch-size conv) and ``patch_embed.norm``,
``mask_token``, ``absolute_pos_embed``, ``stages.{i}.blocks.{j}.norm1``,
``...attn.w_msa.relative_position_bias_table``, ``...attn.w_msa.qkv``,
``...attn.w_msa.proj``, ``...norm2``, ``...ffn.layers.0.0``, ``...ffn.layers.1``,
``stages.{i}.downsample.norm`` / ``.reduction`` (mmcv ``PatchMerging``, no bias), and
the output norm ``norm{last stage}``. The SimMIM config's rules (``'norm'``,
``'bias'``, ``'absolute_pos_embed'``, ``'relative_position_bias_table'``: no weight
decay) select the same tensors as on the torch model.

Block: ``x + W-MSA(norm1(x))`` then ``x + FFN(norm2(x))``; windows of
``window_size x window_size`` tokens, every second block of a stage shifted by
``window_size // 2`` (cyclic roll, cross-region pairs masked with -100), no shift
where the map is exactly one window (mmcls without ``pad_small_map``); attention
``softmax(q k^T * head_dim**-0.5 + B)`` with ``B`` read from the relative position
bias table at mmcls's index (``double_step_seq``, flipped). ``PatchMerging`` takes
each 2x2 neighbourhood in ``nn.Unfold`` order (channel, row, column), LayerNorm,
then the linear reduction to twice the channels. LayerNorm eps 1e-5; linears
truncated-normal(0.02) with zero bias, as ``SimMIMSwinTransformer.init_weights``.

Masking (``SimMIMSwinTransformer.forward``): the patch embedding of a masked
patch is replaced by ``mask_token``. Differences from upstream, for a model that
trains in seconds: two stages (``depths=(2, 1)``, 8 and 16 channels), patch 2,
window 4 on 16x16 images, and ``use_abs_pos_embed=True`` (upstream's SimMIM
config leaves it off, so its ``absolute_pos_embed`` rule would select nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from .vit import FFN

trunc_normal = nn.initializers.truncated_normal(0.02)


def layer_norm(name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=1e-5, use_fast_variance=False, name=name)


def relative_position_index(window: int) -> np.ndarray:
    """mmcls ``WindowMSA``'s ``relative_position_index`` for a square window."""
    seq1 = np.arange(0, (2 * window - 1) * window, 2 * window - 1)
    seq2 = np.arange(0, window)
    coords = (seq1[:, None] + seq2[None, :]).reshape(1, -1)
    return np.flip(coords + coords.T, axis=1)


def window_partition(x, window: int):
    """``(B, H, W, C)`` -> ``(B * nW, window * window, C)``, windows row-major."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_reverse(windows, h: int, w: int, window: int):
    c = windows.shape[-1]
    x = windows.reshape(-1, h // window, w // window, window, window, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int) -> np.ndarray:
    """``(nW, N, N)``: 0 between tokens of the same region of the rolled map, -100 else."""
    img = np.zeros((1, h, w, 1), np.float32)
    cnt = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    ids = window_partition(img, window)[..., 0]
    diff = ids[:, None, :] - ids[:, :, None]
    return np.where(diff != 0, -100.0, 0.0).astype(np.float32)


class WindowMSA(nn.Module):
    num_heads: int
    window: int

    @nn.compact
    def __call__(self, x, mask=None):
        b, n, c = x.shape
        head = c // self.num_heads
        table = self.param("relative_position_bias_table", trunc_normal,
                           ((2 * self.window - 1) ** 2, self.num_heads))
        qkv = nn.Dense(3 * c, kernel_init=trunc_normal, name="qkv")(x)
        qkv = qkv.reshape(b, n, 3, self.num_heads, head).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * head ** -0.5, qkv[1], qkv[2]
        attn = jnp.einsum("bhqd,bhkd->bhqk", q, k)
        index = relative_position_index(self.window).reshape(-1)
        bias = table[index].reshape(n, n, self.num_heads).transpose(2, 0, 1)
        attn = attn + bias[None]
        if mask is not None:
            windows = mask.shape[0]
            attn = attn.reshape(b // windows, windows, self.num_heads, n, n) + \
                jnp.asarray(mask)[None, :, None]
            attn = attn.reshape(b, self.num_heads, n, n)
        attn = nn.softmax(attn, axis=-1)
        out = jnp.einsum("bhqk,bhkd->bqhd", attn, v).reshape(b, n, c)
        return nn.Dense(c, kernel_init=trunc_normal, name="proj")(out)


class ShiftWindowMSA(nn.Module):
    num_heads: int
    window: int
    shift: bool

    @nn.compact
    def __call__(self, x, hw):
        (h, w), (b, _, c) = hw, x.shape
        window = self.window
        if min(h, w) < window:
            raise ValueError(f"Swin stage map {h}x{w} is smaller than the window {window} "
                             "(mmcls refuses this without pad_small_map)")
        if h % window or w % window:
            raise ValueError(f"Swin stage map {h}x{w} is not a multiple of the window {window}")
        shift = window // 2 if self.shift and min(h, w) > window else 0
        x = x.reshape(b, h, w, c)
        if shift:
            x = jnp.roll(x, (-shift, -shift), axis=(1, 2))
        mask = shifted_window_mask(h, w, window, shift) if shift else None
        out = WindowMSA(self.num_heads, window, name="w_msa")(window_partition(x, window), mask)
        x = window_reverse(out, h, w, window)
        if shift:
            x = jnp.roll(x, (shift, shift), axis=(1, 2))
        return x.reshape(b, h * w, c)


class SwinBlock(nn.Module):
    num_heads: int
    window: int
    shift: bool
    mlp_ratio: int = 4

    @nn.compact
    def __call__(self, x, hw):
        x = x + ShiftWindowMSA(self.num_heads, self.window, self.shift, name="attn")(
            layer_norm("norm1")(x), hw)
        c = x.shape[-1]
        return x + FFN(self.mlp_ratio * c, c, trunc_normal, name="ffn")(layer_norm("norm2")(x))


class PatchMerging(nn.Module):
    """mmcv ``PatchMerging`` (kernel 2, stride 2): ``norm`` then ``reduction`` (no bias)."""

    out_channels: int

    @nn.compact
    def __call__(self, x, hw):
        (h, w), (b, _, c) = hw, x.shape
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
        x = x.reshape(b, (h // 2) * (w // 2), 4 * c)
        x = layer_norm("norm")(x)
        x = nn.Dense(self.out_channels, use_bias=False, kernel_init=trunc_normal,
                     name="reduction")(x)
        return x, (h // 2, w // 2)


class SwinBlockSequence(nn.Module):
    depth: int
    num_heads: int
    window: int
    downsample: bool

    @nn.compact
    def __call__(self, x, hw):
        for j in range(self.depth):
            x = SwinBlock(self.num_heads, self.window, shift=j % 2 == 1, name=f"blocks_{j}")(
                x, hw)
        if self.downsample:
            x, hw = PatchMerging(2 * x.shape[-1], name="downsample")(x, hw)
        return x, hw


class SwinPatchEmbed(nn.Module):
    """mmcv ``PatchEmbed`` with a norm: ``projection`` (conv, kernel = stride = patch) and
    ``norm`` (LayerNorm); returns ``(tokens, (h, w))``."""

    dims: int
    patch_size: int

    @nn.compact
    def __call__(self, images):
        p = self.patch_size
        x = nn.Conv(self.dims, (p, p), strides=(p, p), padding="VALID", name="projection")(
            images)
        n, h, w, _ = x.shape
        return layer_norm("norm")(x.reshape(n, h * w, self.dims)), (h, w)


class SimMIMSwinTransformer(nn.Module):
    """Returns the last stage's normalised feature map ``(N, h, w, C)``; ``mask``
    ``(N, H/patch, W/patch)`` (1 = masked) or None."""

    image_size: int = 16
    patch_size: int = 2
    embed_dims: int = 8
    depths: Sequence[int] = (2, 1)
    num_heads: Sequence[int] = (1, 2)
    window_size: int = 4
    use_abs_pos_embed: bool = True

    @nn.compact
    def __call__(self, images, mask=None):
        x, hw = SwinPatchEmbed(self.embed_dims, self.patch_size, name="patch_embed")(images)
        n, length, c = x.shape
        token = self.param("mask_token", trunc_normal, (1, 1, c))
        if mask is not None:
            w = mask.reshape(n, length, 1).astype(x.dtype)
            x = x * (1.0 - w) + token * w
        if self.use_abs_pos_embed:
            x = x + self.param("absolute_pos_embed", trunc_normal, (1, length, c))
        last = len(self.depths) - 1
        for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
            x, hw = SwinBlockSequence(depth, heads, self.window_size, i < last,
                                      name=f"stages_{i}")(x, hw)
        x = layer_norm(f"norm{last}")(x)
        return x.reshape(n, hw[0], hw[1], x.shape[-1])

    @property
    def encoder_stride(self) -> int:
        return self.patch_size * 2 ** (len(self.depths) - 1)
