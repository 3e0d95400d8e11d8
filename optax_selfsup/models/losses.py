"""The self-supervised losses of SimCLR, BYOL and MAE (MMSelfSup 0.11 heads), in JAX.

- ``nt_xent_loss``: SimCLR's ``ContrastiveHead`` on the similarity matrix of the
  L2-normalised projections (``z / (||z|| + 1e-10)``); rows ``2i`` and ``2i+1`` are
  the two views of image ``i``; for each row the positive is its partner, the
  negatives every other row except itself; cross-entropy of ``sim / temperature``.
- ``byol_loss``: ``LatentPredictHead``: ``-mean_i <p_i/|p_i|, t_i/|t_i|>`` with the
  target's gradient stopped (``|x|`` clipped below at 1e-12 like ``F.normalize``).
- ``byol_target_momentum`` / ``momentum_update``: MMSelfSup's ``BYOLHook``:
  ``m = end - (end - base) * (cos(pi*it/max_iters) + 1)/2`` set before iteration
  ``it``; after it, ``target = m*target + (1-m)*online`` (parameters only).
- ``mae_loss``: ``MAEPretrainHead``: per-patch mean squared error against the
  patchified image (normalised per patch with the unbiased variance and eps 1e-6
  when ``norm_pix``), averaged over the masked patches only.
- ``mae_noise``: uniform per-patch noise from a key; the lowest ``1 - mask_ratio``
  fraction of patches is kept (``MAEViT`` takes it as an input so both
  frameworks can be fed the same mask).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .vit import patchify


def nt_xent_loss(z, temperature: float = 0.1):
    z = z / (jnp.linalg.norm(z, axis=1, keepdims=True) + 1e-10)
    sim = z @ z.T / temperature
    n = z.shape[0]
    if n % 2:
        raise ValueError(f"nt_xent_loss needs pairs of views, got {n} rows")
    partner = jnp.arange(n) ^ 1
    logits = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, sim)
    positive = jnp.take_along_axis(sim, partner[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - positive)


def _normalize(x):
    return x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def byol_loss(prediction, target):
    target = jax.lax.stop_gradient(target)
    return -jnp.mean(jnp.sum(_normalize(prediction) * _normalize(target), axis=1))


def byol_target_momentum(it, max_iters: int, base_momentum: float, end_momentum: float = 1.0):
    return end_momentum - (end_momentum - base_momentum) * (
        math.cos(math.pi * it / float(max_iters)) + 1) / 2


def momentum_update(target, online, momentum):
    """``target * m + online * (1 - m)`` leaf by leaf (same tree structure)."""
    return jax.tree.map(lambda t, o: t * momentum + o * (1.0 - momentum), target, online)


def mae_noise(key, batch: int, num_patches: int, dtype=jnp.float32):
    return jax.random.uniform(key, (batch, num_patches), dtype=dtype)


def mae_loss(prediction, images, mask, patch_size: int, norm_pix: bool = True):
    """``prediction``: ``(N, L, p*p*C)``; ``images``: NHWC; ``mask``: ``(N, L)``, 1 = masked."""
    target = patchify(images, patch_size)
    if norm_pix:
        mean = jnp.mean(target, axis=-1, keepdims=True)
        var = jnp.var(target, axis=-1, keepdims=True, ddof=1)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    per_patch = jnp.mean((prediction - target) ** 2, axis=-1)
    return jnp.sum(per_patch * mask) / jnp.sum(mask)
