"""MoCo v1 / v2 (MMSelfSup 0.11 ``MoCo``) as a Flax module and its training loss.

The query encoder is ``backbone`` + ``neck`` (``LinearNeck`` ``neck.fc`` for v1,
``MoCoV2Neck`` ``neck.mlp.0`` / ``neck.mlp.2`` for v2). The key encoder is a copy
kept in the model state (``key``: its own ``params`` and ``batch_stats``), with
the queue of earlier keys (``queue``, ``(feat_dim, queue_len)``, columns
L2-normalised at the start) and its write pointer (``queue_ptr``).

One iteration (``moco_loss_fn``), as upstream's ``forward_train``:

1. ``q = normalize(encoder_q(view 1))``;
2. the key encoder's parameters move towards the query encoder's,
   ``k_params = m * k_params + (1 - m) * q_params`` (every forward, before the
   keys; ``m = model.momentum``, 0.999 in both configs), then
   ``k = normalize(encoder_k(view 2))`` without gradient (upstream shuffles the
   batch across GPUs around this forward; on one device that changes nothing);
3. ``loss = ContrastiveHead([q.k], q.queue)`` with temperature 0.07 (v1) or 0.2
   (v2);
4. the keys replace the oldest columns of the queue.

Upstream's names for the optimizer are ``encoder_q.0.*`` / ``encoder_q.1.*``
(``backbone`` and ``neck`` are aliases of that ``Sequential``); they are
``backbone.*`` / ``neck.*`` here, as in MMSelfSup's checkpoints. No shipped MoCo
config has a paramwise rule that could tell them apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..errors import ConfigError
from .algorithms import apply_train
from .losses import enqueue, l2_normalize, moco_loss, momentum_update
from .necks import LinearNeck, MoCoV2Neck
from .resnet import SmallResNet


class MoCo(nn.Module):
    """``version`` 1: ``LinearNeck``, temperature 0.07; 2: ``MoCoV2Neck``, temperature 0.2."""

    version: int = 2
    widths: Sequence[int] = (8, 16)
    hid_channels: int = 16
    feat_dim: int = 8
    queue_len: int = 512
    momentum: float = 0.999

    @property
    def temperature(self) -> float:
        return 0.07 if self.version == 1 else 0.2

    def setup(self):
        self.backbone = SmallResNet(self.widths)
        self.neck = LinearNeck(self.feat_dim) if self.version == 1 else \
            MoCoV2Neck(self.hid_channels, self.feat_dim)

    def __call__(self, images):
        return self.neck(self.backbone(images))


def moco_init_state(model: MoCo, params, state, key):
    """The key encoder (a copy of the query encoder) and the queue: ``feat_dim x
    queue_len`` standard-normal draws with each column L2-normalised, pointer 0."""
    queue = jax.random.normal(key, (model.feat_dim, model.queue_len), jnp.float32)
    return dict(state, key=dict(params=params, batch_stats=state["batch_stats"]),
                queue=l2_normalize(queue, axis=0), queue_ptr=jnp.zeros((), jnp.int32))


def moco_loss_fn(model: MoCo, params, model_state, batch):
    views = batch["views"]
    if views.shape[0] > model.queue_len:
        raise ConfigError(f"batch size {views.shape[0]} is larger than the MoCo queue "
                          f"({model.queue_len} keys); upstream needs queue_len % batch == 0")
    q, stats = apply_train(model, params, model_state["batch_stats"], views[:, 0])
    q = l2_normalize(q)
    key = model_state["key"]
    key_params = momentum_update(key["params"], jax.lax.stop_gradient(params), model.momentum)
    k, key_stats = apply_train(model, key_params, key["batch_stats"], views[:, 1])
    k = jax.lax.stop_gradient(l2_normalize(k))
    loss = moco_loss(q, k, model_state["queue"], model.temperature)
    queue, ptr = enqueue(model_state["queue"], model_state["queue_ptr"], k)
    key = dict(params=key_params, batch_stats=jax.lax.stop_gradient(key_stats))
    return loss, dict(batch_stats=stats, key=key, queue=queue, queue_ptr=ptr)
