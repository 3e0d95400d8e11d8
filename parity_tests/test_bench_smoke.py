"""The benchmark's hand-fused reference steps (bench/fused.py) against build_optimizer.

bench/bench_update.py times build_optimizer against hand-fused jnp functions
that claim to do the same maths; this keeps that claim true. On a tiny tree
named like ResNet + ViT modules, in float64, through warmup into the cosine
part, with clipping active on some steps and not on others: the parameters of
both agree to 1e-9 of the distance they moved, and the lr build_optimizer
reports at the last update is the fused schedule's value. No timing here.
"""

from __future__ import annotations

import os
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_selfsup as oss

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "bench"))

import fused  # noqa: E402
import trees  # noqa: E402

# name -> (config file, --cfg-options, steps_per_epoch, micro-steps to run)
CASES = {
    "simclr_lars_clip": ("configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py",
                         ["optimizer_config.grad_clip.max_norm=2.0"], 2, 30),
    "byol_lars_accum16": ("configs/selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py",
                          [], 2, 32),
    "mae_adamw_paramwise": ("configs/selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py",
                            [], 1, 50),
    "vit_ft_layer_decay_clip": (
        "configs/benchmarks/classification/vit-base-p16_ft-8xb128-coslr-100e_in1k.py",
        [], 4, 30),
}


KEEP = ("backbone.conv1.weight", "backbone.bn1.weight", "backbone.bn1.bias",
        "backbone.layer1.0.downsample.0.weight", "backbone.layer1.0.downsample.1.bias",
        "backbone.cls_token", "backbone.pos_embed", "backbone.patch_embed.projection.weight",
        "backbone.layers.0.ln1.weight", "backbone.layers.0.attn.qkv.weight",
        "backbone.layers.0.attn.qkv.bias", "backbone.layers.1.ln1.weight",
        "backbone.layers.1.attn.qkv.weight", "backbone.layers.1.attn.qkv.bias",
        "backbone.ln1.weight")


def tiny_shapes():
    """15 leaves named like a ResNet stem + downsample and two ViT blocks: every paramwise
    rule of the four configs and both LARS branches are hit (compile time grows with the
    number of leaves; this keeps the file fast)."""
    shapes = {**trees.resnet50_shapes(width=2),
              **trees.vit_b16_shapes(depth=2, dim=4, patch=2, tokens=5)}
    return {k: shapes[k] for k in KEEP}


def gradient_sequence(shapes, steps):
    """Gradients whose global norm swings from about 0.2 to about 20 (clip 2.0 / 5.0)."""
    rng = np.random.default_rng(3)
    seq = []
    for _ in range(steps):
        scale = 10.0 ** rng.uniform(-1.5, 0.5)
        seq.append(oss.nest_names({n: rng.normal(size=s) * scale for n, s in shapes.items()}))
    return seq


def run_built(tx, params, grads_seq):
    state = tx.init(params)

    def step(p, s, g):
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    step = jax.jit(step)
    for g in grads_seq:
        params, state = step(params, state, g)
    return params, state


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_matches_build_optimizer(name):
    path, options, spe, steps = CASES[name]
    cfg = oss.merge_options(oss.load_config(os.path.join(ROOT, path)), options)
    shapes = tiny_shapes()
    with jax.enable_x64(True):
        p0 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), trees.make_tree(shapes))
        grads = [jax.tree.map(jnp.asarray, g) for g in gradient_sequence(shapes, steps)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tx = oss.build_optimizer(cfg, p0, steps_per_epoch=spe)
        ours, state = run_built(tx, p0, grads)
        recipe = fused.read_recipe(cfg, p0, spe)
        ref = fused.run_fused(fused.build_fused(recipe), jax.tree.map(jnp.copy, p0), grads)

        last_update = steps - 1 - (steps % recipe.every_k)
        assert last_update >= recipe.schedule.warmup_iters, "the run must leave the warmup"
        lr_ours = jax.tree.leaves(oss.current_hparams(state)["lr"])
        lr_ref = recipe.schedule(jnp.asarray(last_update), np.asarray(recipe.base_lr))
        np.testing.assert_allclose(np.asarray(lr_ours, np.float64), lr_ref, rtol=1e-12)

        for n, a, b, start in zip(recipe.names, jax.tree.leaves(ours), jax.tree.leaves(ref),
                                  jax.tree.leaves(p0)):
            moved = float(jnp.max(jnp.abs(b - start)))
            assert moved > 1e-6, f"{n} barely moved ({moved}): the test would prove nothing"
            dev = float(jnp.max(jnp.abs(a - b))) / moved
            assert dev < 1e-9, f"{name}: {n} deviates by {dev:.2e} of its movement"


def test_recipe_reads_layer_decay_groups():
    path = CASES["vit_ft_layer_decay_clip"][0]
    cfg = oss.load_config(os.path.join(ROOT, path))
    params = trees.make_tree(trees.vit_b16_shapes(depth=12, dim=4, patch=2, tokens=5))
    recipe = fused.read_recipe(cfg, params, 10)
    # 14 lr levels (embeddings, 12 blocks, the final norm) x (decayed, not decayed)
    assert len(set(recipe.base_lr)) == 14
    assert recipe.max_norm == 5.0 and recipe.optimizer == "AdamW"


def test_only_a_full_run_rewrites_the_bench_readme():
    """A --quick (or any partial) run must not replace the full run's published tables."""
    import argparse

    import bench_update

    def target(**kw):
        args = dict(readme=None, quick=False, trees=None, configs=None, skip_steps=False)
        return bench_update.readme_target(argparse.Namespace(**{**args, **kw}))

    assert target().endswith(os.path.join("bench", "README.md"))
    for partial in (dict(quick=True), dict(trees="vit-b16"), dict(configs="mae"),
                    dict(skip_steps=True)):
        assert target(**partial) == ""
    assert target(quick=True, readme="out.md") == "out.md"
