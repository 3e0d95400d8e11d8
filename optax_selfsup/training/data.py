"""A small labelled image dataset drawn procedurally, its loader order and augmentations.

``shapes_dataset(n, image_size, seed)`` draws ``n`` RGB images of ten classes
(disc, ring, square, square outline, horizontal stripes, vertical stripes, plus,
X, triangle, checkerboard) with random position, size, stripe period,
foreground and background colours and pixel noise, as float32 in ``[0, 1]``,
NHWC. Nothing is downloaded; the same seed gives the same images. Colour is
random per image, so only the shape identifies the class: a linear probe on
features that ignore colour can find it (chance is 10%). Every class is
symmetric under a horizontal flip, so the flip augmentation keeps the label.

The loader is a pure function of the position: ``epoch_order(seed, epoch, n)``
is the shuffled order of an epoch (``drop_last``, like MMSelfSup's sampler
with a fixed length), and augmentation draws its randomness from a key folded
with the global iteration, so a run restored from a checkpoint sees exactly
the batches an uninterrupted run would.

``two_views(key, images)`` is SimCLR's augmentation scaled to tiny images:
random resized crop (scale 0.3-1, aspect 3/4-4/3, bilinear), horizontal flip
(p=0.5), colour jitter (p=0.8: brightness, contrast, saturation 0.4 each),
grayscale (p=0.2), then ``normalize``; MoCo, SimSiam, BarlowTwins and BYOL use it
too. ``multi_crop`` makes SwAV's crops of several sizes the same way.
``crop_flip`` is a crop and a flip only (MAE: scale 0.2-1; SimMIM 0.67-1;
rotation prediction and fine-tuning 0.08-1). All run inside the jitted training
step.
"""

from __future__ import annotations

import numpy as np

NUM_CLASSES = 10
CLASS_NAMES = ("disc", "ring", "square", "square_outline", "h_stripes", "v_stripes", "plus",
               "x_cross", "triangle", "checkerboard")
MEAN, STD = 0.5, 0.25  # images live in [0, 1]; normalised to about zero mean, unit scale


def _masks(label: int, dy, dx, y, x, radius, period, phase):
    """Boolean foreground mask of class ``label`` on the pixel grid (all arrays broadcast)."""
    ady, adx = np.abs(dy), np.abs(dx)
    dist = np.sqrt(dy ** 2 + dx ** 2)
    box = np.maximum(ady, adx)
    width = np.maximum(radius * 0.3, 1.0)
    if label == 0:
        return dist < radius
    if label == 1:
        return (dist < radius) & (dist > radius * 0.55)
    if label == 2:
        return box < radius * 0.85
    if label == 3:
        return (box < radius * 0.9) & (box > radius * 0.9 - np.maximum(radius * 0.35, 1.2))
    if label == 4:
        return np.sin(2 * np.pi * y / period + phase) > 0
    if label == 5:
        return np.sin(2 * np.pi * x / period + phase) > 0
    if label == 6:
        arm = width / 2 + 0.5
        return ((adx < arm) & (ady < radius)) | ((ady < arm) & (adx < radius))
    if label == 7:
        return (np.abs(adx - ady) < width / 2 + 0.6) & (box < radius)
    if label == 8:
        return (dy < radius * 0.8) & (adx < (dy + radius) * 0.6)
    cell = np.floor(period / 2)
    return ((np.floor((y + phase) / cell) + np.floor((x + phase) / cell)) % 2) == 0


def shapes_dataset(n: int, image_size: int = 16, seed: int = 0):
    """``(images, labels)``: ``(n, S, S, 3)`` float32 in [0, 1] and ``(n,)`` int32, classes
    balanced (``i % 10`` before shuffling)."""
    if n < 1 or image_size < 8:
        raise ValueError(f"need n >= 1 and image_size >= 8, got n={n}, image_size={image_size}")
    rng = np.random.default_rng([seed, 20240607])
    s = image_size
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int32)
    y, x = np.meshgrid(np.arange(s, dtype=np.float32), np.arange(s, dtype=np.float32),
                       indexing="ij")
    centre = s / 2 - 0.5 + rng.uniform(-s / 8, s / 8, size=(n, 2, 1, 1))
    radius = s * rng.uniform(0.25, 0.42, size=(n, 1, 1))
    period = s * rng.uniform(0.25, 0.4, size=(n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    dy, dx = y[None] - centre[:, 0], x[None] - centre[:, 1]
    mask = np.zeros((n, s, s), bool)
    for label in range(NUM_CLASSES):
        sel = labels == label
        mask[sel] = _masks(label, dy[sel], dx[sel], y, x, radius[sel], period[sel], phase[sel])
    foreground = rng.uniform(0, 1, size=(n, 3))
    background = rng.uniform(0, 1, size=(n, 3))
    # keep the shape visible: push the background away from the foreground's brightness
    weak = np.abs(foreground.mean(1) - background.mean(1)) < 0.3
    background[weak] = np.clip(1.0 - foreground[weak] + rng.uniform(-0.1, 0.1, (weak.sum(), 3)),
                               0, 1)
    images = np.where(mask[..., None], foreground[:, None, None], background[:, None, None])
    images = images + rng.normal(0, 0.04, size=images.shape)
    return np.clip(images, 0, 1).astype(np.float32), labels


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of epoch ``epoch`` (0-based): a permutation drawn from (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 7]).permutation(n)


def batch_indices(seed: int, iteration: int, steps_per_epoch: int, batch_size: int, n: int):
    """The dataset indices of global iteration ``iteration`` (``drop_last`` loader)."""
    epoch, inner = divmod(iteration, steps_per_epoch)
    return epoch_order(seed, epoch, n)[inner * batch_size:(inner + 1) * batch_size]


# ---- augmentations (jax, inside the jitted step) -------------------------------------------

def normalize(images):
    return (images - MEAN) / STD


def _resized_crop(key, image, scale, ratio, out_size=None):
    """A random crop of ``scale`` of the area and aspect ``ratio``, resized (bilinear) to
    ``out_size x out_size`` (default: the image's own size)."""
    import jax
    import jax.numpy as jnp

    size = image.shape[0]
    out = size if out_size is None else out_size
    k_area, k_ratio, k_y, k_x = jax.random.split(key, 4)
    area = jax.random.uniform(k_area, minval=scale[0], maxval=scale[1])
    log_ratio = jax.random.uniform(k_ratio, minval=np.log(ratio[0]), maxval=np.log(ratio[1]))
    aspect = jnp.exp(log_ratio)
    crop_h = jnp.clip(size * jnp.sqrt(area / aspect), 2.0, size)
    crop_w = jnp.clip(size * jnp.sqrt(area * aspect), 2.0, size)
    top = jax.random.uniform(k_y) * (size - crop_h)
    left = jax.random.uniform(k_x) * (size - crop_w)
    zoom = jnp.stack([out / crop_h, out / crop_w])
    return jax.image.scale_and_translate(image, (out, out) + image.shape[2:], (0, 1), zoom,
                                         -jnp.stack([top, left]) * zoom, "linear")


def _flip(key, image):
    import jax
    import jax.numpy as jnp

    return jnp.where(jax.random.bernoulli(key), image[:, ::-1], image)


def _gray(image):
    return (image @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def _colour(key, image):
    import jax
    import jax.numpy as jnp

    k_apply, k_b, k_c, k_s, k_g = jax.random.split(key, 5)
    b, c, s = (jax.random.uniform(k, minval=0.6, maxval=1.4) for k in (k_b, k_c, k_s))
    jittered = jnp.clip(image * b, 0, 1)
    jittered = jnp.clip((jittered - jnp.mean(_gray(jittered))) * c + jnp.mean(_gray(jittered)),
                        0, 1)
    jittered = jnp.clip((jittered - _gray(jittered)) * s + _gray(jittered), 0, 1)
    image = jnp.where(jax.random.bernoulli(k_apply, 0.8), jittered, image)
    return jnp.where(jax.random.bernoulli(k_g, 0.2), jnp.broadcast_to(_gray(image), image.shape),
                     image)


def simclr_view(key, image, scale=(0.3, 1.0), out_size=None):
    """One SimCLR view of one ``(S, S, 3)`` image in [0, 1], normalised: a crop of
    ``scale`` of the area resized to ``out_size`` (default ``S``), flip, colour."""
    import jax

    k_crop, k_flip, k_colour = jax.random.split(key, 3)
    image = _resized_crop(k_crop, image, scale, (3 / 4, 4 / 3), out_size)
    return normalize(_colour(k_colour, _flip(k_flip, image)))


def two_views(key, images):
    """``(N, 2, S, S, 3)``: two independent SimCLR views of each image."""
    import jax

    keys = jax.random.split(key, 2 * images.shape[0]).reshape(images.shape[0], 2, -1)
    per_image = jax.vmap(simclr_view, in_axes=(0, None))
    return jax.vmap(per_image, in_axes=(0, 0))(keys, images)


def multi_crop(key, images, num_crops, sizes, scales):
    """SwAV's multi-crop: one ``(N, num_crops[g], sizes[g], sizes[g], 3)`` array per group
    ``g`` of SimCLR-style views whose crops cover ``scales[g]`` of the image's area."""
    import jax

    out = []
    for g, (count, size, scale) in enumerate(zip(num_crops, sizes, scales)):
        keys = jax.random.split(jax.random.fold_in(key, g), images.shape[0] * count)
        keys = keys.reshape(images.shape[0], count, -1)

        def group(k, image, scale=scale, size=size):
            return simclr_view(k, image, scale, size)

        per_image = jax.vmap(group, in_axes=(0, None))
        out.append(jax.vmap(per_image, in_axes=(0, 0))(keys, images))
    return out


def crop_flip(key, images, scale=(0.2, 1.0)):
    """``(N, S, S, 3)``: a random resized crop (``scale`` of the area; MAE's 0.2-1) and a
    flip, normalised."""
    import jax

    def one(k, image):
        k_crop, k_flip = jax.random.split(k)
        return normalize(_flip(k_flip, _resized_crop(k_crop, image, scale, (3 / 4, 4 / 3))))

    return jax.vmap(one)(jax.random.split(key, images.shape[0]), images)
