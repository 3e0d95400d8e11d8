"""A tiny ViT classifier for fine-tuning configs (MMSelfSup 0.11's benchmark
``Classification`` with ``MIMVisionTransformer`` and ``MAEFinetuneHead``), in Flax.

Names (``backbone.``): ``patch_embed.projection``, ``cls_token``, ``pos_embed``,
``layers.{i}.{ln1, attn.qkv, attn.proj, ln2, ffn.layers.0.0, ffn.layers.1}`` (the
layers ``optimizer.model_type='vit'`` counts for layer-wise lr decay) and, with
``final_norm=False`` as in the fine-tuning config, ``fc_norm`` applied to the mean
of the patch tokens; the head is ``head.head`` (Linear, truncated-normal(2e-5)
weight, zero bias). Loss: label-smoothed cross-entropy (0.1) against the
generated images' labels: fine-tuning is supervised.

Upstream's batch Mixup / CutMix and drop-path are left out; ``pos_embed`` is
truncated-normal(0.02), ``cls_token`` zero, as mmcls initialises them.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from .losses import label_smooth_loss
from .vit import PatchEmbed, TransformerEncoderLayer, layer_norm


class MIMVisionTransformer(nn.Module):
    image_size: int = 16
    patch_size: int = 4
    dims: int = 16
    depth: int = 2
    num_heads: int = 2
    mlp_ratio: int = 4

    @nn.compact
    def __call__(self, images):
        x = PatchEmbed(self.dims, self.patch_size, name="patch_embed")(images)
        n, length, _ = x.shape
        cls = self.param("cls_token", nn.initializers.zeros, (1, 1, self.dims))
        pos = self.param("pos_embed", nn.initializers.truncated_normal(0.02),
                         (1, 1 + length, self.dims))
        x = jnp.concatenate([jnp.broadcast_to(cls, (n, 1, self.dims)), x], axis=1) + pos
        for i in range(self.depth):
            x = TransformerEncoderLayer(self.num_heads, self.mlp_ratio * self.dims,
                                        name=f"layers_{i}")(x)
        return layer_norm("fc_norm")(jnp.mean(x[:, 1:], axis=1))


class MAEFinetuneHead(nn.Module):
    num_classes: int = 10

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.truncated_normal(2e-5),
                        name="head")(x)


class Classification(nn.Module):
    image_size: int = 16
    num_classes: int = 10
    label_smooth_val: float = 0.1

    def setup(self):
        self.backbone = MIMVisionTransformer(self.image_size)
        self.head = MAEFinetuneHead(self.num_classes)

    def features(self, images):
        return self.backbone(images)

    def __call__(self, images):
        return self.head(self.backbone(images))


def classification_loss_fn(model: Classification, params, model_state, batch):
    """``batch``: ``{'images': (N, H, W, C), 'labels': (N,)}``."""
    logits = model.apply({"params": params}, batch["images"])
    return label_smooth_loss(logits, batch["labels"], model.label_smooth_val), model_state
