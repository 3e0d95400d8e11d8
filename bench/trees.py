"""Parameter trees shaped like the models MMSelfSup trains, with its torch names.

- ``resnet50_shapes()``: torchvision / mmcls ResNet-50 (161 tensors, 25.6M
  parameters): ``backbone.conv1.weight``, ``backbone.bn1.weight``,
  ``backbone.layer1.0.conv1.weight``, ..., ``backbone.layer1.0.downsample.0.weight``
  / ``downsample.1.weight``, and the classifier ``head.fc.weight`` / ``head.fc.bias``.
- ``vit_b16_shapes()``: MMSelfSup's ViT-B/16 backbone (150 tensors, 85.8M):
  ``backbone.patch_embed.projection.weight``, ``backbone.cls_token``,
  ``backbone.pos_embed``, ``backbone.layers.{i}.ln1.weight``, ``.attn.qkv.weight``,
  ``.attn.proj.weight``, ``.ln2.weight``, ``.ffn.layers.0.0.weight``,
  ``.ffn.layers.1.weight`` (and their biases), ``backbone.ln1.weight`` (final norm).
- ``tiny_shapes(n)``: ``n`` tiny tensors named like ResNet conv / bn / bias leaves,
  for the compile-time scan.

``make_tree(shapes)`` turns a shape table into nested-dict params (leaf names are
the torch names) and gradients, deterministic from a seed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from optax_selfsup.names import nest_names


def resnet50_shapes(width: int = 64) -> dict[str, tuple[int, ...]]:
    """ResNet-50 (``width=64``; smaller widths give the same 161 names, fewer parameters)."""
    b = "backbone."
    shapes = {b + "conv1.weight": (width, 3, 7, 7), b + "bn1.weight": (width,),
              b + "bn1.bias": (width,)}
    inplanes = width
    for stage, blocks in enumerate((3, 4, 6, 3), start=1):
        planes = width * 2 ** (stage - 1)
        for i in range(blocks):
            p = f"{b}layer{stage}.{i}."
            shapes[p + "conv1.weight"] = (planes, inplanes, 1, 1)
            shapes[p + "bn1.weight"] = shapes[p + "bn1.bias"] = (planes,)
            shapes[p + "conv2.weight"] = (planes, planes, 3, 3)
            shapes[p + "bn2.weight"] = shapes[p + "bn2.bias"] = (planes,)
            shapes[p + "conv3.weight"] = (planes * 4, planes, 1, 1)
            shapes[p + "bn3.weight"] = shapes[p + "bn3.bias"] = (planes * 4,)
            if i == 0:
                shapes[p + "downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                shapes[p + "downsample.1.weight"] = (planes * 4,)
                shapes[p + "downsample.1.bias"] = (planes * 4,)
            inplanes = planes * 4
    shapes["head.fc.weight"] = (1000, inplanes)
    shapes["head.fc.bias"] = (1000,)
    return shapes


def vit_b16_shapes(depth: int = 12, dim: int = 768, patch: int = 16,
                   tokens: int = 197) -> dict[str, tuple[int, ...]]:
    """ViT-B/16 backbone at 224x224 (``depth``/``dim`` shrink it for tests)."""
    b = "backbone."
    shapes = {b + "cls_token": (1, 1, dim), b + "pos_embed": (1, tokens, dim),
              b + "patch_embed.projection.weight": (dim, 3, patch, patch),
              b + "patch_embed.projection.bias": (dim,)}
    for i in range(depth):
        p = f"{b}layers.{i}."
        shapes[p + "ln1.weight"] = shapes[p + "ln1.bias"] = (dim,)
        shapes[p + "attn.qkv.weight"] = (3 * dim, dim)
        shapes[p + "attn.qkv.bias"] = (3 * dim,)
        shapes[p + "attn.proj.weight"] = (dim, dim)
        shapes[p + "attn.proj.bias"] = (dim,)
        shapes[p + "ln2.weight"] = shapes[p + "ln2.bias"] = (dim,)
        shapes[p + "ffn.layers.0.0.weight"] = (4 * dim, dim)
        shapes[p + "ffn.layers.0.0.bias"] = (4 * dim,)
        shapes[p + "ffn.layers.1.weight"] = (dim, 4 * dim)
        shapes[p + "ffn.layers.1.bias"] = (dim,)
    shapes[b + "ln1.weight"] = shapes[b + "ln1.bias"] = (dim,)
    return shapes


def tiny_shapes(n: int) -> dict[str, tuple[int, ...]]:
    """``n`` tiny leaves named like ResNet blocks (conv weight, bn weight, bn bias)."""
    kinds = (("conv1.weight", (4, 2, 1, 1)), ("bn1.weight", (4,)), ("bn1.bias", (4,)))
    return {f"backbone.layer{i // 3}.{kinds[i % 3][0]}": kinds[i % 3][1] for i in range(n)}


TREES = {"resnet50": resnet50_shapes, "vit-b16": vit_b16_shapes}


def make_tree(shapes: dict, seed: int = 0, scale: float = 0.05):
    """Nested-dict params named by ``shapes`` (float32; normal * scale, norm weights near 1)."""
    rng = np.random.default_rng(seed)
    flat = {}
    for name, shape in shapes.items():
        if len(shape) == 1 and name.endswith("weight"):
            flat[name] = (1.0 + 0.1 * rng.normal(size=shape)).astype(np.float32)
        else:
            flat[name] = (rng.normal(size=shape) * scale).astype(np.float32)
    return nest_names(flat)


def make_grads(shapes: dict, seed: int = 1, scale: float = 0.01):
    rng = np.random.default_rng(seed)
    return nest_names({n: (rng.normal(size=s) * scale).astype(np.float32)
                       for n, s in shapes.items()})


def to_device(tree):
    """A fresh device copy (each variant owns its buffers: donation invalidates them)."""
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def tree_bytes(tree) -> int:
    return sum(int(np.prod(np.shape(x))) * np.dtype(x.dtype).itemsize
               for x in jax.tree.leaves(tree) if hasattr(x, "dtype"))


def count(shapes: dict) -> tuple[int, int]:
    return len(shapes), sum(int(np.prod(s)) for s in shapes.values())
