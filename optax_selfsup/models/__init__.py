"""Small Flax models named like MMSelfSup's, with their self-supervised losses.

``MODELS`` maps a name to a ``ModelSpec`` (description, module factory, how to
make a batch, the loss of one iteration). ``init_model(name, seed, image_size)``
gives ``(module, params, model_state)``. Parameter names become MMSelfSup's torch
names through the default Flax -> torch name map, so MMSelfSup's
``paramwise_options`` regexes select the same tensors in both frameworks
(``backbone.layer2.0.downsample.1.weight``, ``neck.bn0.weight``,
``head.predictor.fc0.weight``, ``backbone.layers.0.attn.qkv.weight`` ...).
``torch_ref.models`` has the same networks in torch; ``transfer`` moves weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from .algorithms import (
    BYOL,
    MAE,
    SimCLR,
    byol_loss_fn,
    byol_update_target,
    mae_loss_fn,
    simclr_loss,
)
from .losses import byol_target_momentum, mae_loss, momentum_update, nt_xent_loss
from .necks import LatentPredictHead, NonLinearNeck
from .resnet import BasicBlock, SmallResNet
from .transfer import flax_variables_from_torch, torch_name_table, torch_state_dict_from_flax
from .vit import MAEPretrainDecoder, MAEViT, patchify


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    description: str
    make: Callable  # (image_size) -> flax module
    loss: Callable  # (module, params, model_state, batch) -> (loss, new_model_state)
    make_batch: Callable  # (rng: np.random.Generator, batch_size, image_size, dtype) -> dict


def _views_batch(rng, batch_size, image_size, dtype=np.float32):
    return {"views": rng.normal(size=(batch_size, 2, image_size, image_size, 3)).astype(dtype)}


def _mae_batch(rng, batch_size, image_size, dtype=np.float32, patch_size=4):
    patches = (image_size // patch_size) ** 2
    return {"images": rng.normal(size=(batch_size, image_size, image_size, 3)).astype(dtype),
            "noise": rng.uniform(size=(batch_size, patches)).astype(dtype)}


MODELS: dict[str, ModelSpec] = {
    "simclr_resnet": ModelSpec(
        "SimCLR: small ResNet (BasicBlocks) + NonLinearNeck (fc0-bn0-relu-fc1-bn1), NT-Xent",
        lambda image_size: SimCLR(), simclr_loss, _views_batch),
    "byol_resnet": ModelSpec(
        "BYOL: small ResNet + NonLinearNeck, predictor head, momentum target, cosine loss",
        lambda image_size: BYOL(), byol_loss_fn, _views_batch),
    "mae_vit": ModelSpec(
        "MAE: tiny ViT encoder (patch 4) + decoder, 75% masking, normalised-pixel MSE",
        lambda image_size: MAE(image_size=image_size), mae_loss_fn, _mae_batch),
}


def init_model(name: str, seed: int = 0, image_size: int = 16, batch_size: int = 2,
               abstract: bool = False):
    """``(module, params, model_state)`` initialised from ``seed`` for
    ``image_size x image_size x 3`` images; BYOL's target starts as a copy of the online
    backbone and neck. ``abstract=True`` gives ``jax.ShapeDtypeStruct`` leaves without
    computing anything (a template for ``flax_variables_from_torch``)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    spec = MODELS[name]
    module = spec.make(image_size)
    batch = spec.make_batch(np.random.default_rng(seed), batch_size, image_size)
    key = jax.random.PRNGKey(seed)
    init = jax.eval_shape if abstract else jax.jit
    if name == "mae_vit":
        variables = init(module.init, key, batch["images"], batch["noise"]) if abstract else \
            init(module.init)(key, batch["images"], batch["noise"])
    else:
        first = batch["views"].reshape((-1,) + batch["views"].shape[2:])
        variables = init(module.init, key, first) if abstract else init(module.init)(key, first)
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}
    if name == "byol_resnet":
        state["target"] = dict(
            params={k: params[k] for k in ("backbone", "neck")},
            batch_stats={k: state["batch_stats"][k] for k in ("backbone", "neck")})
    return module, params, state


__all__ = [
    "BYOL", "BasicBlock", "LatentPredictHead", "MAE", "MAEPretrainDecoder", "MAEViT", "MODELS",
    "ModelSpec", "NonLinearNeck", "SimCLR", "SmallResNet", "byol_loss_fn",
    "byol_target_momentum", "byol_update_target", "flax_variables_from_torch", "init_model",
    "mae_loss", "mae_loss_fn", "momentum_update", "nt_xent_loss", "patchify", "simclr_loss",
    "torch_name_table", "torch_state_dict_from_flax",
]
