"""Which small model a config trains, and the glue between it and the training loop.

The networks and their losses are ``optax_selfsup.models`` (``MODELS``); this
module only adapts them to the loop: how a batch of raw images becomes the
model's input (augmented views, crops, rotations, masks, labels), what happens
to the parameters before a forward pass (SwAV's prototype normalisation) and
after an update (BYOL's momentum target), and which features the linear probe
reads (the backbone's pooled output: ResNet global pool, MAE's mean patch token
without masking, the Swin's mean last-stage token without masking, the
fine-tuning ViT's ``fc_norm`` output).

The model is chosen (``choose_model``), first match wins, from

1. ``--model NAME``;
2. the config's ``model.type`` (MMSelfSup's algorithm name; ``MoCo`` is v1 with a
   ``LinearNeck``, v2 with a ``MoCoV2Neck``; ``Classification`` of a
   ``MIMVisionTransformer``: the ViT classifier) or, without a type,
   ``model.backbone.type`` (``MAEViT``, ``SimMIMSwinTransformer``);
3. a fine-tuning optimizer (``constructor='TransformerFinetuneConstructor'`` or
   ``model_type='vit'``): the ViT classifier;
4. the file name's first word (``simclr_resnet50_...py`` -> SimCLR,
   ``rotation-pred_...`` -> RotationPred), which MMSelfSup's naming scheme starts
   with the algorithm;
5. otherwise the demo model (SimCLR), said so in the command's output. A
   config or file name naming an MMSelfSup algorithm that has no model here
   (DenseCL, NPID, ...) is an error instead, listing the supported ones.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable

from ..config.mmcv1_hooks import custom_hooks
from ..errors import ConfigError

# MMSelfSup algorithm (model.type) -> name in optax_selfsup.models.MODELS
ALGORITHMS = {"SimCLR": "simclr_resnet", "BYOL": "byol_resnet", "MAE": "mae_vit",
              "MoCoV1": "mocov1_resnet", "MoCoV2": "mocov2_resnet", "SwAV": "swav_resnet",
              "SimSiam": "simsiam_resnet", "BarlowTwins": "barlowtwins_resnet",
              "RotationPred": "rotationpred_resnet", "SimMIM": "simmim_swin"}
BACKBONES = {"MAEViT": "mae_vit", "SimMIMSwinTransformer": "simmim_swin"}
MOCO_NECKS = {"LinearNeck": "mocov1_resnet", "MoCoV2Neck": "mocov2_resnet"}
# MMSelfSup 0.x / 1.x algorithms without a small model here (refused rather than trained
# as the demo model)
UNSUPPORTED = ("DenseCL", "NPID", "ODC", "DeepCluster", "RelativeLoc", "InterCLRMoCo",
               "InterCLR", "MoCoV3", "CAE", "MaskFeat", "BEiT", "MixMIM", "MILAN", "EVA",
               "PixMIM", "SparK", "iTPN", "BEiTv2")
DEMO_MODEL = "simclr_resnet"
BYOL_BASE_MOMENTUM = 0.99  # MMSelfSup 0.11 configs/selfsup/_base_/models/byol.py
MOCO_MOMENTUM = 0.999  # configs/selfsup/_base_/models/mocov{1,2}.py


def _word(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _supported() -> str:
    from ..models import MODELS

    return (f"supported algorithms: {', '.join(sorted(ALGORITHMS))} (and fine-tuning "
            f"configs of a ViT); models (--model): {', '.join(sorted(MODELS))}")


def _from_model_section(model: dict) -> tuple[str, str] | None:
    kind = model.get("type")
    backbone = (model.get("backbone") or {}).get("type")
    if kind == "MoCo":
        neck = (model.get("neck") or {}).get("type")
        if neck in MOCO_NECKS:
            return MOCO_NECKS[neck], f"model.type='MoCo' with model.neck.type={neck!r}"
        raise ConfigError(f"model.type='MoCo' with model.neck.type={neck!r}: MoCo v1 has a "
                          f"'LinearNeck', v2 a 'MoCoV2Neck'; pass --model mocov1_resnet or "
                          f"mocov2_resnet")
    if kind in ALGORITHMS:
        return ALGORITHMS[kind], f"model.type={kind!r}"
    # MMSelfSup 0.x fine-tuning: 'Classification'; MMPretrain 1.x: 'ImageClassifier'
    if kind in ("Classification", "ImageClassifier") and \
            backbone in ("MIMVisionTransformer", "VisionTransformer"):
        return "classification_vit", f"model.type={kind!r} with a {backbone!r}"
    if kind is None and backbone in BACKBONES:
        return BACKBONES[backbone], f"model.backbone.type={backbone!r}"
    if kind is None and backbone is None:
        return None  # settings only (--cfg-options model.momentum=0.99): the other rules
    raise ConfigError(f"model.type={kind!r} (backbone {backbone!r}) has no small training "
                      f"model; {_supported()}")


def choose_model(cfg: dict, config_path: str | None, override: str | None) -> tuple[str, str]:
    """``(model name, why)``; ConfigError listing the supported names when the config names
    an algorithm that has no model here."""
    from ..models import MODELS

    if override is not None:
        if override not in MODELS:
            raise ConfigError(f"--model {override!r} is not a model; {_supported()}")
        return override, "--model"
    model = cfg.get("model")
    if isinstance(model, dict):
        chosen = _from_model_section(model)
        if chosen is not None:
            return chosen
    optimizer = cfg.get("optimizer") if isinstance(cfg.get("optimizer"), dict) else {}
    if optimizer.get("constructor") == "TransformerFinetuneConstructor" or \
            optimizer.get("model_type") is not None:
        kind = optimizer.get("model_type")
        if kind == "vit":
            return "classification_vit", "a ViT fine-tuning optimizer (model_type='vit')"
        raise ConfigError(f"optimizer.model_type={kind!r}: a fine-tuning config; only "
                          f"'vit' has a small classifier here (classification_vit)")
    if config_path:
        word = _word(os.path.basename(config_path).split("_")[0])
        for kind, name in ALGORITHMS.items():
            if _word(kind) == word:
                return name, f"config file name starts with {word!r} (no 'model' in the config)"
        for kind in UNSUPPORTED:
            if _word(kind) == word:
                raise ConfigError(f"{config_path}: the file name names MMSelfSup's {kind}, "
                                  f"which has no small training model here; pass --model "
                                  f"NAME to train its optimizer on one; {_supported()}")
    return DEMO_MODEL, ("the demo model: the config names no algorithm (no 'model' section, "
                        "no algorithm at the start of the file name)")


@dataclasses.dataclass
class Task:
    """A model and everything the loop needs to train and probe it."""

    name: str
    module: object
    params: dict
    model_state: dict
    # (params, model_state, images in [0,1], labels, key) -> (loss, new model_state)
    loss: Callable
    features: Callable  # (params, model_state, images in [0,1]) -> (N, D)
    # BYOL: the target's momentum at an iteration (host side) and the update applied after
    # every optimizer update: (model_state, params, momentum) -> model_state
    target_momentum: Callable | None = None
    after_update: Callable | None = None
    # SwAV: params -> params before every forward pass (normalised prototypes)
    prepare_params: Callable | None = None
    notes: tuple = ()


def _hook(cfg: dict, kind: str) -> dict:
    for hook in custom_hooks(cfg):
        if hook.get("type") == kind:
            return hook
    return {}


def build_optimizer(cfg: dict, task: Task, steps_per_epoch: int):
    """``oss.build_optimizer`` for the task's params. The models are named like MMSelfSup's
    torch models, so where the config's rules treat normalization layers unevenly
    (``NormLayerWarning``: torch ResNet's ``downsample.1``, SimSiam's predictor) the run is
    upstream's: that becomes a ``note:`` line instead of a warning. Other warnings pass."""
    import optax_selfsup as oss

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tx = oss.build_optimizer(cfg, task.params, steps_per_epoch=steps_per_epoch)
    for w in caught:
        if issubclass(w.category, oss.NormLayerWarning):
            text = str(w.message).split(". MMSelfSup's own regex")[0]
            task.notes += (f"{text}; as on MMSelfSup's torch model, whose layer names these "
                           f"are",)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return tx


def make_task(name: str, cfg: dict, *, seed: int, image_size: int, max_iters: int) -> Task:
    from .. import models
    from ..models import MODELS, init_model

    # MAE and the classifier: 4x4 patches; SimMIM: 2x2 patches, 4x4 windows in both stages
    for model, multiple in (("mae_vit", models.MAE.patch_size), ("classification_vit", 4),
                            ("simmim_swin", 16)):
        if name == model and image_size % multiple:
            raise ConfigError(f"--image-size {image_size}: the {model} model needs a multiple "
                              f"of {multiple}")
    module, params, model_state = init_model(name, seed=seed, image_size=image_size)
    import jax
    import jax.numpy as jnp

    # targets / key encoders start as the online arrays themselves; the step donates both,
    # so each needs its own buffer
    model_state = jax.tree.map(jnp.copy, model_state)
    spec = MODELS[name]
    if name in ("mocov1_resnet", "mocov2_resnet"):
        module = module.clone(momentum=(cfg.get("model") or {}).get("momentum",
                                                                      MOCO_MOMENTUM))
    make_batch = _batch_maker(name, image_size)

    def loss(params, model_state, images, labels, key):
        return spec.loss(module, params, model_state, make_batch(key, images, labels))

    task = Task(name, module, params, model_state, loss, _features(name, module))
    if name == "byol_resnet":
        # MMSelfSup's BYOLHook: before iteration it, m = byol_target_momentum(it); after an
        # iteration that updated the parameters, target <- m * target + (1 - m) * online
        base = (cfg.get("model") or {}).get("base_momentum", BYOL_BASE_MOMENTUM)
        end = _hook(cfg, "BYOLHook").get("end_momentum", 1.0)
        task.target_momentum = lambda it: models.byol_target_momentum(it, max_iters, base, end)
        task.after_update = models.byol_update_target
        task.notes = (f"BYOL target momentum {base} -> {end} (cosine over {max_iters} "
                      f"iterations), applied after every optimizer update",)
    elif name in ("mocov1_resnet", "mocov2_resnet"):
        task.notes = (f"MoCo key encoder momentum {module.momentum} (every forward pass), queue of "
                      f"{module.queue_len} keys, temperature {module.temperature}",)
    elif name == "swav_resnet":
        task.prepare_params = models.normalize_prototypes
        task.notes = ("SwAV prototypes L2-normalised before every forward pass; crops 2 x "
                      f"{image_size}px + 6 x {models.swav_small_crop(image_size)}px",)
    return task


def _batch_maker(name: str, image_size: int) -> Callable:
    """``(key, images in [0, 1], labels) -> the model's batch dict``, inside the step."""
    import jax

    from .. import models
    from .data import crop_flip, multi_crop, two_views

    if name == "swav_resnet":
        sizes = (image_size, models.swav_small_crop(image_size))
        return lambda key, images, labels: {"crops": multi_crop(
            key, images, (2, 6), sizes, ((0.14, 1.0), (0.05, 0.14)))}
    if name == "rotationpred_resnet":
        return lambda key, images, labels: {
            "images": models.rotations(crop_flip(key, images, (0.08, 1.0)))}
    if name == "classification_vit":
        return lambda key, images, labels: {"images": crop_flip(key, images, (0.08, 1.0)),
                                            "labels": labels}
    if name == "simmim_swin":
        def simmim(key, images, labels):
            k_aug, k_mask = jax.random.split(key)
            return {"images": crop_flip(k_aug, images, (0.67, 1.0)),
                    "mask": models.simmim_mask(k_mask, images.shape[0], image_size)}
        return simmim
    if name == "mae_vit":
        from ..models.losses import mae_noise

        num_patches = (image_size // models.MAE.patch_size) ** 2

        def mae(key, images, labels):
            k_aug, k_noise = jax.random.split(key)
            return {"images": crop_flip(k_aug, images),
                    "noise": mae_noise(k_noise, images.shape[0], num_patches)}
        return mae
    return lambda key, images, labels: {"views": two_views(key, images)}


def _features(name: str, module) -> Callable:
    import jax.numpy as jnp

    from .. import models
    from .data import normalize

    if name == "mae_vit":
        def mae_features(params, model_state, images):
            encoder = models.MAEViT(module.image_size, module.patch_size, module.dims,
                                    module.depth, module.num_heads, mask_ratio=0.0)
            noise = jnp.zeros((images.shape[0], (module.image_size // module.patch_size) ** 2))
            latent, _, _ = encoder.apply({"params": params["backbone"]}, normalize(images),
                                         noise)  # mask_ratio 0 keeps every patch
            return jnp.mean(latent[:, 1:], axis=1)
        return mae_features
    if name in ("simmim_swin", "classification_vit"):
        return lambda params, model_state, images: module.apply(
            {"params": params}, normalize(images), method=type(module).features)

    def resnet_features(params, model_state, images):
        # the models' BatchNorm always normalises with the batch's statistics (training mode)
        net = models.SmallResNet(module.widths)
        out, _ = net.apply({"params": params["backbone"],
                            "batch_stats": model_state["batch_stats"]["backbone"]},
                           normalize(images), mutable=["batch_stats"])
        return out
    return resnet_features
