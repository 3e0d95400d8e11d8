"""Which small model a config trains, and the glue between it and the training loop.

The networks and their losses are ``optax_selfsup.models`` (``MODELS``); this
module only adapts them to the loop: how a batch of raw images becomes the
model's input (augmented views, MAE's mask noise), what happens after an update
(BYOL's momentum target), and which features the linear probe reads (the
backbone's pooled output; for MAE the encoder without masking, mean of the
patch tokens).

The model is chosen from the config's ``model.type`` (MMSelfSup's algorithm
name: ``SimCLR``, ``BYOL``, ``MAE``) or ``model.backbone.type`` (``MAEViT``);
a config without a ``model`` section (optax_selfsup's recipes carry only the
optimisation part) is matched by its file name's first word
(``simclr_resnet50_...py`` -> SimCLR), which MMSelfSup's naming scheme
starts with the algorithm. ``--model NAME`` overrides both.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from ..config.mmcv1_hooks import custom_hooks
from ..errors import ConfigError

# MMSelfSup algorithm (or backbone) type -> name in optax_selfsup.models.MODELS
ALGORITHMS = {"SimCLR": "simclr_resnet", "BYOL": "byol_resnet", "MAE": "mae_vit",
              "MAEViT": "mae_vit"}
BYOL_BASE_MOMENTUM = 0.99  # MMSelfSup 0.11 configs/selfsup/_base_/models/byol.py


def choose_model(cfg: dict, config_path: str | None, override: str | None) -> tuple[str, str]:
    """``(model name, why)``; ConfigError listing the supported names when nothing fits."""
    from ..models import MODELS

    supported = (f"supported algorithms: {', '.join(sorted(set(ALGORITHMS) - {'MAEViT'}))}; "
                 f"models (--model): {', '.join(sorted(MODELS))}")
    if override is not None:
        if override not in MODELS:
            raise ConfigError(f"--model {override!r} is not a model; {supported}")
        return override, "--model"
    model = cfg.get("model")
    if isinstance(model, dict):
        kinds = [model.get("type"), (model.get("backbone") or {}).get("type")]
        for kind in kinds:
            if kind in ALGORITHMS:
                return ALGORITHMS[kind], f"model.type={kind!r}" if kind == kinds[0] else \
                    f"model.backbone.type={kind!r}"
        raise ConfigError(f"model.type={kinds[0]!r} (backbone {kinds[1]!r}) has no small "
                          f"training model; {supported}")
    if config_path:
        word = os.path.basename(config_path).split("_")[0].lower()
        for kind, name in ALGORITHMS.items():
            if kind.lower() == word:
                return name, f"config file name starts with {word!r} (no 'model' in the config)"
    raise ConfigError(f"{config_path or 'the config'}: cannot tell the model (no 'model' "
                      f"section, file name does not start with an algorithm name); pass "
                      f"--model NAME; {supported}")


@dataclasses.dataclass
class Task:
    """A model and everything the loop needs to train and probe it."""

    name: str
    module: object
    params: dict
    model_state: dict
    loss: Callable  # (params, model_state, images in [0,1], key) -> (loss, new model_state)
    features: Callable  # (params, model_state, images in [0,1]) -> (N, D)
    # BYOL: the target's momentum at an iteration (host side) and the update applied after
    # every optimizer update: (model_state, params, momentum) -> model_state
    target_momentum: Callable | None = None
    after_update: Callable | None = None
    notes: tuple = ()


def _byol_hook(cfg: dict) -> dict:
    for hook in custom_hooks(cfg):
        if hook.get("type") == "BYOLHook":
            return hook
    return {}


def make_task(name: str, cfg: dict, *, seed: int, image_size: int, max_iters: int) -> Task:
    import jax
    import jax.numpy as jnp

    from .. import models
    from ..models import MODELS, byol_target_momentum, byol_update_target, init_model
    from ..models.losses import mae_noise
    from .data import crop_flip, normalize, two_views

    if name == "mae_vit" and image_size % models.MAE.patch_size:
        raise ConfigError(f"--image-size {image_size}: the MAE model cuts images into "
                          f"{models.MAE.patch_size}x{models.MAE.patch_size} patches; use a "
                          f"multiple of {models.MAE.patch_size}")
    module, params, model_state = init_model(name, seed=seed, image_size=image_size)
    # BYOL's target starts as the online arrays themselves; the step donates both, so each
    # needs its own buffer
    model_state = jax.tree.map(jnp.copy, model_state)
    spec = MODELS[name]

    def resnet_features(params, model_state, images):
        # the models' BatchNorm always normalises with the batch's statistics (training mode)
        net = models.SmallResNet(module.widths)
        out, _ = net.apply({"params": params["backbone"],
                            "batch_stats": model_state["batch_stats"]["backbone"]},
                           normalize(images), mutable=["batch_stats"])
        return out

    if name in ("simclr_resnet", "byol_resnet"):
        def loss(params, model_state, images, key):
            return spec.loss(module, params, model_state, {"views": two_views(key, images)})

        task = Task(name, module, params, model_state, loss, resnet_features)
        if name == "byol_resnet":
            # MMSelfSup's BYOLHook: before iteration it, m = byol_target_momentum(it); after an
            # iteration that updated the parameters, target <- m * target + (1 - m) * online
            base = (cfg.get("model") or {}).get("base_momentum", BYOL_BASE_MOMENTUM)
            end = _byol_hook(cfg).get("end_momentum", 1.0)
            task.target_momentum = lambda it: byol_target_momentum(it, max_iters, base, end)
            task.after_update = byol_update_target
            task.notes = (f"BYOL target momentum {base} -> {end} (cosine over {max_iters} "
                          f"iterations), applied after every optimizer update",)
        return task

    patch = module.patch_size
    num_patches = (image_size // patch) ** 2

    def mae_loss(params, model_state, images, key):
        k_aug, k_noise = jax.random.split(key)
        batch = {"images": crop_flip(k_aug, images),
                 "noise": mae_noise(k_noise, images.shape[0], num_patches)}
        return spec.loss(module, params, model_state, batch)

    def mae_features(params, model_state, images):
        encoder = models.MAEViT(module.image_size, module.patch_size, module.dims, module.depth,
                                module.num_heads, mask_ratio=0.0)
        noise = jnp.zeros((images.shape[0], num_patches))  # mask_ratio 0 keeps every patch
        latent, _, _ = encoder.apply({"params": params["backbone"]}, normalize(images), noise)
        return jnp.mean(latent[:, 1:], axis=1)

    return Task(name, module, params, model_state, mae_loss, mae_features)

