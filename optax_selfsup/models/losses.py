"""The losses of MMSelfSup 0.11's heads, in JAX.

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
- ``moco_loss`` / ``enqueue``: MoCo's ``ContrastiveHead`` on one positive and a
  queue of negatives, and the queue's ring update; ``sinkhorn`` / ``swav_loss``:
  SwAV's assignments and swapped prediction; ``simsiam_loss``;
  ``cross_correlation_loss`` (BarlowTwins); ``cross_entropy`` (rotation
  prediction); ``simmim_loss`` (masked-pixel L1); ``label_smooth_loss``
  (fine-tuning). Each docstring gives the formula.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .vit import patchify


def nt_xent_loss(z, temperature: float = 0.1):
    z = z / (vector_norm(z) + 1e-10)
    sim = z @ z.T / temperature
    n = z.shape[0]
    if n % 2:
        raise ValueError(f"nt_xent_loss needs pairs of views, got {n} rows")
    partner = jnp.arange(n) ^ 1
    logits = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, sim)
    positive = jnp.take_along_axis(sim, partner[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - positive)


def _normalize(x):
    return l2_normalize(x)


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


# ---- MoCo, SwAV, SimSiam, BarlowTwins, rotation prediction, SimMIM, fine-tuning -------------

def vector_norm(x, axis: int = 1):
    """``||x||`` along ``axis`` (kept) with torch's gradient at 0: zero. ``jnp.linalg.norm``'s
    is ``0 / 0`` there, so one all-zero row (a ReLU that closed for a sample) made every
    gradient NaN where torch trains on."""
    squares = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    positive = squares > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squares, 1.0)), 0.0)


def l2_normalize(x, axis: int = 1):
    """``torch.nn.functional.normalize``: ``x / max(||x||, 1e-12)`` along ``axis``."""
    return x / jnp.maximum(vector_norm(x, axis), 1e-12)


def contrastive_loss(pos, neg, temperature: float):
    """``ContrastiveHead``: cross-entropy of ``[pos, neg] / temperature`` with the positive
    (column 0) as the label; ``pos`` ``(N, 1)``, ``neg`` ``(N, K)``, mean over rows."""
    logits = jnp.concatenate([pos, neg], axis=1) / temperature
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[:, 0])


def moco_loss(q, k, queue, temperature: float):
    """MoCo's InfoNCE: ``q``, ``k`` ``(N, C)`` L2-normalised queries and keys (the key's
    gradient stopped), ``queue`` ``(C, K)`` earlier keys; positives ``<q_i, k_i>``,
    negatives ``q_i . queue``."""
    k = jax.lax.stop_gradient(k)
    pos = jnp.sum(q * k, axis=1, keepdims=True)
    neg = q @ jax.lax.stop_gradient(queue)
    return contrastive_loss(pos, neg, temperature)


def enqueue(queue, ptr, keys):
    """MoCo's ``_dequeue_and_enqueue``: ``keys`` ``(N, C)`` written as columns ``ptr ..
    ptr+N-1`` of the ``(C, K)`` queue, the pointer advanced by ``N`` modulo ``K``.
    (Upstream asserts ``K % N == 0``; here the columns wrap around, which is the same
    whenever upstream runs.)"""
    length = queue.shape[1]
    columns = (ptr + jnp.arange(keys.shape[0])) % length
    queue = queue.at[:, columns].set(jax.lax.stop_gradient(keys).T.astype(queue.dtype))
    return queue, ((ptr + keys.shape[0]) % length).astype(ptr.dtype)


def sinkhorn(scores, iterations: int = 3, epsilon: float = 0.05):
    """SwAV's Sinkhorn-Knopp (``distributed_sinkhorn`` on one device): ``scores``
    ``(B, K)`` -> soft assignments ``(B, K)`` whose rows sum to 1, with equal total
    weight per prototype. ``Q = exp(scores / epsilon)^T`` scaled to sum 1; each
    iteration divides every row (prototype) by its sum and by ``K``, then every column
    (sample) by its sum and by ``B``; finally ``Q * B``. When some prototype's row sums
    to exactly 0, ``1e-12`` is added to every entry first (upstream's guard)."""
    q = jnp.exp(scores / epsilon).T
    k, b = q.shape
    q = q / jnp.sum(q)
    for _ in range(iterations):
        rows = jnp.sum(q, axis=1, keepdims=True)
        q = jnp.where(jnp.any(rows == 0), q + 1e-12, q)
        q = q / jnp.sum(q, axis=1, keepdims=True) / k
        q = q / jnp.sum(q, axis=0, keepdims=True) / b
    return jax.lax.stop_gradient(q * b).T


def swav_loss(scores, num_crops=(2, 6), crops_for_assign=(0, 1), temperature: float = 0.1,
              epsilon: float = 0.05, sinkhorn_iterations: int = 3):
    """``SwAVHead``: ``scores`` ``(sum(num_crops) * B, K)`` prototype scores, crop-major
    (rows ``v*B .. v*B+B-1`` are crop ``v`` of every image). For each crop ``c`` of
    ``crops_for_assign``: codes ``q = sinkhorn(scores of c)`` (no gradient), and the
    cross-entropy ``-mean_i sum_k q_ik log softmax(scores_v / temperature)_ik`` averaged
    over every other crop ``v``; then averaged over the assigned crops."""
    total = int(sum(num_crops))
    b = scores.shape[0] // total
    loss = 0.0
    for crop in crops_for_assign:
        q = sinkhorn(scores[b * crop:b * (crop + 1)], sinkhorn_iterations, epsilon)
        sub = 0.0
        for v in range(total):
            if v != crop:
                logp = jax.nn.log_softmax(scores[b * v:b * (v + 1)] / temperature, axis=1)
                sub = sub - jnp.mean(jnp.sum(q * logp, axis=1))
        loss = loss + sub / (total - 1)
    return loss / len(crops_for_assign)


def simsiam_loss(p1, p2, z1, z2):
    """SimSiam: ``0.5 * (D(p1, z2) + D(p2, z1))`` with ``D = byol_loss`` (negative cosine,
    target gradient stopped)."""
    return 0.5 * (byol_loss(p1, z2) + byol_loss(p2, z1))


def cross_correlation_loss(a, b, lambd: float = 0.0051):
    """``LatentCrossCorrelationHead`` after its BatchNorm: ``a``, ``b`` ``(N, C)`` the
    batch-normalised projections; ``c = a^T b / N``; ``sum_i (c_ii - 1)^2 + lambd *
    sum_{i != j} c_ij^2``."""
    c = a.T @ b / a.shape[0]
    diag = jnp.diagonal(c)
    return jnp.sum((diag - 1.0) ** 2) + lambd * (jnp.sum(c ** 2) - jnp.sum(diag ** 2))


def cross_entropy(logits, labels):
    """``nn.CrossEntropyLoss`` with integer labels, mean over rows."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def label_smooth_loss(logits, labels, smoothing: float = 0.1):
    """mmcls ``LabelSmoothLoss(mode='original')``: soft-label cross-entropy against
    ``(1 - smoothing) * onehot + smoothing / num_classes``, mean over rows."""
    k = logits.shape[-1]
    target = jax.nn.one_hot(labels, k) * (1.0 - smoothing) + smoothing / k
    return -jnp.mean(jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1))


def simmim_loss(images, reconstruction, mask, patch_size: int):
    """``SimMIMHead``: ``mask`` ``(N, h, w)`` at the model's patch grid (1 = masked) is
    repeated ``patch_size`` times along both axes; ``sum(|x - x_rec| * mask) /
    (sum(mask) + 1e-5) / C`` over NHWC images (``sum(mask)`` counts pixels, not
    channels)."""
    m = jnp.repeat(jnp.repeat(mask, patch_size, axis=1), patch_size, axis=2)[..., None]
    m = m.astype(images.dtype)
    l1 = jnp.abs(images - reconstruction)
    return jnp.sum(l1 * m) / (jnp.sum(m) + 1e-5) / images.shape[-1]
