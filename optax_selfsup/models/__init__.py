"""Small Flax models named like MMSelfSup's, with their training losses.

SimCLR, BYOL, MoCo v1/v2, SwAV, SimSiam, BarlowTwins, rotation prediction (small
ResNets), MAE (tiny ViT), SimMIM (tiny Swin) and a ViT fine-tuning classifier.

``MODELS`` maps a name to a ``ModelSpec`` (description, module factory, how to
make a random batch, the loss of one iteration, the inputs ``module.init`` takes
from a batch, the extra state: BYOL's target, MoCo's key encoder and queue).
``init_model(name, seed, image_size)`` gives ``(module, params, model_state)``.
Parameter names become MMSelfSup's torch names through the default Flax -> torch
name map, so MMSelfSup's ``paramwise_options`` regexes select the same tensors in
both frameworks
(``backbone.layer2.0.downsample.1.weight``, ``neck.bn0.weight``,
``head.predictor.fc0.weight``, ``backbone.layers.0.attn.qkv.weight`` ...).
``torch_ref.models`` has SimCLR, BYOL and MAE in torch; ``transfer`` moves weights.
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
from .moco import MoCo, moco_init_state, moco_loss_fn
from .necks import LatentPredictHead, LinearNeck, MoCoV2Neck, NonLinearNeck, SwAVNeck
from .resnet import BasicBlock, SmallResNet
from .siamese import (
    BarlowTwins,
    RotationPred,
    SimSiam,
    barlowtwins_loss_fn,
    rotation_loss_fn,
    rotations,
    simsiam_loss_fn,
)
from .simmim import SimMIM, simmim_loss_fn, simmim_mask
from .swav import SwAV, normalize_prototypes, swav_loss_fn
from .swin import SimMIMSwinTransformer
from .transfer import flax_variables_from_torch, torch_name_table, torch_state_dict_from_flax
from .vit import MAEPretrainDecoder, MAEViT, patchify
from .vit_cls import Classification, MIMVisionTransformer, classification_loss_fn


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    description: str
    make: Callable  # (image_size) -> flax module
    loss: Callable  # (module, params, model_state, batch) -> (loss, new_model_state)
    make_batch: Callable  # (rng: np.random.Generator, batch_size, image_size, dtype) -> dict
    init_inputs: Callable = None  # batch -> the arguments of module.init after the key
    init_state: Callable = None  # (module, params, state, key) -> state (targets, queues)


def _views_batch(rng, batch_size, image_size, dtype=np.float32):
    return {"views": rng.normal(size=(batch_size, 2, image_size, image_size, 3)).astype(dtype)}


def _first_view(batch):
    views = batch["views"]
    return (views.reshape((-1,) + views.shape[2:]),)


def _mae_batch(rng, batch_size, image_size, dtype=np.float32, patch_size=4):
    patches = (image_size // patch_size) ** 2
    return {"images": rng.normal(size=(batch_size, image_size, image_size, 3)).astype(dtype),
            "noise": rng.uniform(size=(batch_size, patches)).astype(dtype)}


def _images_batch(rng, batch_size, image_size, dtype=np.float32):
    return {"images": rng.normal(size=(batch_size, image_size, image_size, 3)).astype(dtype),
            "labels": rng.integers(0, 10, size=batch_size).astype(np.int32)}


def _rotation_batch(rng, batch_size, image_size, dtype=np.float32):
    images = rng.normal(size=(batch_size, image_size, image_size, 3)).astype(dtype)
    return {"images": np.stack([np.rot90(images, k, axes=(1, 2)) for k in range(4)], 1)}


def swav_small_crop(image_size: int) -> int:
    """The side of SwAV's small crops: half the image (upstream: 96 of 224)."""
    return max(4, image_size // 2)


def _swav_batch(rng, batch_size, image_size, dtype=np.float32):
    small = swav_small_crop(image_size)
    return {"crops": [
        rng.normal(size=(batch_size, 2, image_size, image_size, 3)).astype(dtype),
        rng.normal(size=(batch_size, 6, small, small, 3)).astype(dtype)]}


def _simmim_batch(rng, batch_size, image_size, dtype=np.float32):
    side = image_size // 4
    mask = (rng.uniform(size=(batch_size, side, side)) < 0.6).astype(np.int32)
    return {"images": rng.normal(size=(batch_size, image_size, image_size, 3)).astype(dtype),
            "mask": np.repeat(np.repeat(mask, 2, axis=1), 2, axis=2)}


def _byol_target(module, params, state, key):
    return dict(state, target=dict(
        params={k: params[k] for k in ("backbone", "neck")},
        batch_stats={k: state["batch_stats"][k] for k in ("backbone", "neck")}))


_RESNET = "small ResNet (BasicBlocks)"
MODELS: dict[str, ModelSpec] = {
    "simclr_resnet": ModelSpec(
        f"SimCLR: {_RESNET} + NonLinearNeck (fc0-bn0-relu-fc1-bn1), NT-Xent",
        lambda image_size: SimCLR(), simclr_loss, _views_batch, _first_view),
    "byol_resnet": ModelSpec(
        f"BYOL: {_RESNET} + NonLinearNeck, predictor head, momentum target, cosine loss",
        lambda image_size: BYOL(), byol_loss_fn, _views_batch, _first_view, _byol_target),
    "mae_vit": ModelSpec(
        "MAE: tiny ViT encoder (patch 4) + decoder, 75% masking, normalised-pixel MSE",
        lambda image_size: MAE(image_size=image_size), mae_loss_fn, _mae_batch,
        lambda b: (b["images"], b["noise"])),
    "mocov1_resnet": ModelSpec(
        f"MoCo v1: {_RESNET} + LinearNeck, momentum key encoder, queue, InfoNCE (T=0.07)",
        lambda image_size: MoCo(version=1), moco_loss_fn, _views_batch, _first_view,
        moco_init_state),
    "mocov2_resnet": ModelSpec(
        f"MoCo v2: {_RESNET} + MoCoV2Neck (MLP), momentum key encoder, queue, InfoNCE (T=0.2)",
        lambda image_size: MoCo(version=2), moco_loss_fn, _views_batch, _first_view,
        moco_init_state),
    "swav_resnet": ModelSpec(
        f"SwAV: {_RESNET} + SwAVNeck, prototypes, Sinkhorn codes, 2+6 multi-crop",
        lambda image_size: SwAV(), swav_loss_fn, _swav_batch,
        lambda b: (b["crops"][0][:, 0],)),
    "simsiam_resnet": ModelSpec(
        f"SimSiam: {_RESNET} + 3-layer NonLinearNeck, predictor, stop-gradient cosine",
        lambda image_size: SimSiam(), simsiam_loss_fn, _views_batch, _first_view),
    "barlowtwins_resnet": ModelSpec(
        f"BarlowTwins: {_RESNET} + 3-layer NonLinearNeck, cross-correlation loss",
        lambda image_size: BarlowTwins(), barlowtwins_loss_fn, _views_batch, _first_view),
    "rotationpred_resnet": ModelSpec(
        f"RotationPred: {_RESNET} + ClsHead, 4-way rotation classification",
        lambda image_size: RotationPred(), rotation_loss_fn, _rotation_batch,
        lambda b: (b["images"][:, 0],)),
    "simmim_swin": ModelSpec(
        "SimMIM: tiny Swin (patch 2, window 4) + 1x1-conv pixel-shuffle decoder, masked L1",
        lambda image_size: SimMIM(image_size=image_size), simmim_loss_fn, _simmim_batch,
        lambda b: (b["images"], b["mask"])),
    "classification_vit": ModelSpec(
        "ViT fine-tuning: tiny MIMVisionTransformer (fc_norm) + linear head, label smoothing",
        lambda image_size: Classification(image_size=image_size), classification_loss_fn,
        _images_batch, lambda b: (b["images"],)),
}


def init_model(name: str, seed: int = 0, image_size: int = 16, batch_size: int = 2,
               abstract: bool = False):
    """``(module, params, model_state)`` initialised from ``seed`` for
    ``image_size x image_size x 3`` images; BYOL's target and MoCo's key encoder start as
    copies of the online network. ``abstract=True`` gives ``jax.ShapeDtypeStruct`` leaves
    without computing anything (a template for ``flax_variables_from_torch``)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    spec = MODELS[name]
    module = spec.make(image_size)
    batch = spec.make_batch(np.random.default_rng(seed), batch_size, image_size)
    key = jax.random.PRNGKey(seed)
    state_key = jax.random.fold_in(key, 1)
    inputs = spec.init_inputs(batch)

    def build(key, *inputs):
        variables = module.init(key, *inputs)
        params = variables["params"]
        state = {k: v for k, v in variables.items() if k != "params"}
        if spec.init_state is not None:
            state = spec.init_state(module, params, state, state_key)
        return params, state

    if abstract:
        params, state = jax.eval_shape(build, key, *inputs)
    elif isinstance(key, jax.core.Tracer):  # inside a jax transformation: staged into it
        params, state = build(key, *inputs)
    else:
        # compiled without XLA's backend optimisations: the random initialisers' threefry
        # takes seconds to optimise and the function runs once
        params, state = jax.jit(build, compiler_options={"xla_backend_optimization_level": 0})(
            key, *inputs)
    return module, params, state


__all__ = [
    "BYOL", "BarlowTwins", "BasicBlock", "Classification", "LatentPredictHead", "LinearNeck",
    "MAE", "MAEPretrainDecoder", "MAEViT", "MIMVisionTransformer", "MODELS", "MoCo",
    "MoCoV2Neck", "ModelSpec", "NonLinearNeck", "RotationPred", "SimCLR", "SimMIM",
    "SimMIMSwinTransformer", "SimSiam", "SmallResNet", "SwAV", "SwAVNeck",
    "barlowtwins_loss_fn", "byol_loss_fn", "byol_target_momentum", "byol_update_target",
    "classification_loss_fn", "flax_variables_from_torch", "init_model", "mae_loss",
    "mae_loss_fn", "moco_init_state", "moco_loss_fn", "momentum_update", "normalize_prototypes",
    "nt_xent_loss", "patchify", "rotation_loss_fn", "rotations", "simclr_loss",
    "simmim_loss_fn", "simmim_mask", "simsiam_loss_fn", "swav_loss_fn", "swav_small_crop",
    "torch_name_table", "torch_state_dict_from_flax",
]
