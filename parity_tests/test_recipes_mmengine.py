"""The MMEngine-generation recipes of configs/: MMSelfSup 1.0.0's in configs/mmselfsup1/ and
MMPretrain 1.2.0's in configs/mmpretrain/, each at its upstream path under those folders.

Each recipe must be the optimisation part of the real upstream file: what the real MMEngine
0.10.7 loads from the upstream file (``data/upstream_views.json``, made by
``tools/upstream_configs.py`` from the vendored files) equals what ``oss.load_config`` (MMEngine's
own loader) loads from the recipe, key by key: ``default_scope``, ``optim_wrapper``,
``param_scheduler``, ``train_cfg``, ``auto_scale_lr``, ``custom_hooks``, a top-level
``optimizer`` and the model facts (type, backbone type / arch / depth). The parity of each
recipe against the real MMEngine Runner is ``test_parity_configs.py``.
"""

from __future__ import annotations

import os
import re

import pytest

import optax_selfsup as oss
from optax_selfsup.config.generation import MMENGINE, generation_of, uses_mmengine_loader

from upstream_data import load_views

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
# recipe folder under configs/ -> the vendored upstream dist whose tree it mirrors
TREES = {"mmselfsup1": "mmselfsup-1.0.0", "mmpretrain": "mmpretrain-1.2.0"}
# recipe (path under configs/) -> what it exercises (docs/training.md shows the same table)
RECIPES = {
    "mmselfsup1/selfsup/simclr/simclr_resnet50_16xb256-coslr-200e_in1k.py":
        "LARS; custom_keys decay_mult + lars_exclude; warmup per iteration, cosine per epoch",
    "mmselfsup1/selfsup/byol/byol_resnet50_8xb256-amp-accum2-coslr-200e_in1k.py":
        "LARS under AMP (static loss scale 512); accumulative_counts=2",
    "mmpretrain/mocov3/mocov3_vit-small-p16_16xb256-amp-coslr-300e_in1k.py":
        "AdamW in one param group; dynamic AMP",
    "mmpretrain/mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py":
        "AdamW betas (0.9, 0.95); custom_keys without weight decay; dynamic AMP",
    "mmpretrain/simmim/simmim_swin-base-w6_8xb256-amp-coslr-100e_in1k-192px.py":
        "AdamW; clip_grad max_norm 5 after unscaling; cosine eta_min",
    "mmpretrain/spark/spark_sparse-resnet50_8xb512-amp-coslr-800e_in1k.py":
        "Lamb; bias / flat decay_mult; CosineAnnealingWeightDecay 0.04 -> 0.2; clip; AMP",
    "mmpretrain/beitv2/beitv2_beit-base-p16_8xb256-amp-coslr-300e_in1k.py":
        "AdamW betas (0.9, 0.98); '.'-prefixed custom_keys; clip_grad 3; AMP",
    "mmpretrain/mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py":
        "layer-wise lr decay 0.65 (LearningRateDecayOptimWrapperConstructor, ViT-B); "
        "norm / bias / flat decay_mult",
    "mmpretrain/simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py":
        "SGD; SimSiamHook keeps the predictor's lr (fix_lr) while the cosine anneals the rest",
}
KEYS = ("default_scope", "optim_wrapper", "param_scheduler", "train_cfg", "auto_scale_lr",
        "custom_hooks")


def _shipped() -> set[str]:
    found = set()
    for tree in TREES:
        for folder, _, files in os.walk(os.path.join(ROOT, tree)):
            found |= {os.path.relpath(os.path.join(folder, f), ROOT) for f in files}
    return found


def upstream_of(recipe: str) -> str:
    """The vendored upstream file a recipe mirrors (a key of ``load_views()``)."""
    tree, _, rest = recipe.partition("/")
    return f"{TREES[tree]}/{rest}"


def test_every_mmengine_recipe_is_listed():
    assert _shipped() == set(RECIPES)


def test_the_recipes_cover_what_the_generation_adds():
    """LARS, Lamb, AMP (static and dynamic), accumulation, clipping, layer decay, a
    weight-decay schedule and SimSiamHook each have a recipe."""
    text = " ".join(RECIPES.values())
    for feature in ("LARS", "Lamb", "static loss scale", "dynamic AMP", "accumulative_counts",
                    "clip_grad", "layer-wise lr decay", "CosineAnnealingWeightDecay",
                    "SimSiamHook"):
        assert feature in text, feature


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_header_names_its_upstream_file(recipe):
    with open(os.path.join(ROOT, recipe), encoding="utf-8") as f:
        header = []
        for line in f:
            if not line.startswith("#"):
                break
            header.append(line[1:].strip())
    text = " ".join(header)
    dist, _, rest = upstream_of(recipe).partition("/")
    name, version = dist.rsplit("-", 1)
    assert f"configs/{rest}" in text, header
    assert version in text and {"mmselfsup": "MMSelfSup", "mmpretrain": "MMPretrain"}[name] \
        in text, header


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_is_the_optimisation_part_of_the_upstream_file(recipe):
    path = os.path.join(ROOT, recipe)
    assert uses_mmengine_loader(path)
    cfg = oss.load_config(path)
    assert generation_of(cfg) == MMENGINE
    view = load_views()[upstream_of(recipe)]
    for key in KEYS:
        assert cfg.get(key) == view.get(key), key
    if "optimizer" in cfg:  # the variable real configs pass into optim_wrapper
        assert cfg["optimizer"] == view["optimizer"] == cfg["optim_wrapper"]["optimizer"]
    backbone = {k: v for k, v in view["model"]["backbone"].items()
                if k in ("type", "arch", "depth")}
    assert cfg["model"] == dict(type=view["model"]["type"], backbone=backbone)
    assert set(cfg) <= {*KEYS, "optimizer", "model", "lr"}, sorted(cfg)


def test_a_recipe_builds_for_a_model_and_names_its_groups():
    """describe on the layer-decay recipe: the ViT's cls_token gets lr * 0.65**13."""
    import jax
    import numpy as np

    from optax_selfsup.names import nest_names

    recipe = "mmpretrain/mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py"
    cfg = oss.load_config(os.path.join("configs", recipe))
    params = nest_names({"backbone.cls_token": jax.ShapeDtypeStruct((1, 1, 4), np.float32),
                         "backbone.layers.11.ln1.weight": jax.ShapeDtypeStruct((4,), np.float32),
                         "head.layers.head.weight": jax.ShapeDtypeStruct((3, 4), np.float32)})
    rows = {r["name"]: r for r in oss.describe(cfg, params)}
    assert rows["backbone.cls_token"]["lr"] == pytest.approx(2e-3 * 0.65 ** 13)
    assert rows["backbone.layers.11.ln1.weight"]["lr"] == pytest.approx(2e-3 * 0.65)
    assert rows["head.layers.head.weight"]["weight_decay"] == 0.05


def test_the_docs_table_lists_every_recipe():
    docs = os.path.join(os.path.dirname(ROOT), "docs", "training.md")
    with open(docs, encoding="utf-8") as f:
        text = f.read()
    for recipe in RECIPES:
        assert re.search(rf"`configs/{re.escape(recipe)}`", text), recipe
