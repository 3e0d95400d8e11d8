"""A whole training step (gradient + update) with the params living flat, vs per tensor.

Two small Flax Linen models from optax_selfsup.models, with their losses:

- **resnet**: SimCLR, a ResNet of BasicBlocks (widths 32-64-128-256, 2 blocks per stage)
  + NonLinearNeck (512 -> 128), 2 x 8 views of 32x32 images, NT-Xent; the SimCLR
  config's LARS + grad_clip 2.0 (bench/fused.py ``lars_core`` per tensor,
  bench/flat_steps.py ``lars_flat`` flat);
- **vit**: MAE, a ViT encoder (patch 4, dim 192, depth 6, 3 heads) + decoder (dim 96,
  depth 2) on 8 32x32 images, 75% masking; the MAE config's AdamW.

Variants, interleaved per round: **tree** (``jax.grad`` of the loss of the per-tensor
params, then the per-tensor hand-fused update) and **flat** (the loss reads its tensors
from the flat buffer through ``layout.unflatten``; ``jax.grad`` gives the flat gradient;
the flat update); **grad tree** / **grad flat**: the gradient alone (returned), to show
what reading the tensors as slices and writing the gradient as one buffer cost in the
forward and backward pass. Each step is one ``jax.jit`` with params and optimizer state
donated; compile seconds are trace + lower + compile of that function.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from bench_update import SPE, load
from flat_steps import adamw_flat, lars_flat, make_layout
from fused import adamw_core, lars_core, read_recipe
from variants import compile_aot

from optax_selfsup.layout import Flat
from optax_selfsup.models import MAE, NonLinearNeck, SmallResNet, mae_loss_fn, nt_xent_loss


class ResNetSimCLR(nn.Module):
    @nn.compact
    def __call__(self, x):
        f = SmallResNet((32, 64, 128, 256), (2, 2, 2, 2), stem_width=32, name="backbone")(x)
        return NonLinearNeck(512, 128, name="neck")(f)


def resnet_case(rng):
    model = ResNetSimCLR()
    views = rng.normal(size=(16, 32, 32, 3)).astype(np.float32)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), views)
    params, stats = variables["params"], {"batch_stats": variables["batch_stats"]}

    def loss(params, stats, batch):
        z, upd = model.apply({"params": params, **stats}, batch, mutable=["batch_stats"])
        return nt_xent_loss(z, 0.1), upd

    return "resnet (SimCLR, LARS + clip)", "simclr", params, stats, views, loss


def vit_case(rng):
    model = MAE(image_size=32, patch_size=4, dims=192, depth=6, decoder_dims=96,
                decoder_depth=2, num_heads=3)
    batch = {"images": rng.normal(size=(8, 32, 32, 3)).astype(np.float32),
             "noise": rng.uniform(size=(8, 64)).astype(np.float32)}
    params = jax.jit(model.init)(jax.random.PRNGKey(0), batch["images"],
                                 batch["noise"])["params"]

    def loss(params, stats, batch):
        return mae_loss_fn(model, params, stats, batch)

    return "vit (MAE, AdamW)", "mae", params, {}, batch, loss


def steps(recipe, layout, loss):
    """The four jitted functions: (tree, flat, grad tree, grad flat)."""
    core = lars_core if recipe.optimizer == "LARS" else adamw_core
    init_tree, apply_tree = core(recipe)
    init_flat, apply_flat = (lars_flat if recipe.optimizer == "LARS" else adamw_flat)(
        recipe, layout)
    grad = jax.value_and_grad(loss, has_aux=True)

    def tree(params, slots, stats, batch, it, count):
        (value, stats), grads = grad(params, stats, batch)
        ps, treedef = jax.tree.flatten(params)
        gs = treedef.flatten_up_to(grads)
        flat_slots = {k: treedef.flatten_up_to(v) for k, v in slots.items()}
        new_p, new_slots = apply_tree(ps, gs, flat_slots, it, count)
        unflat = lambda xs: jax.tree.unflatten(treedef, xs)
        return unflat(new_p), {k: unflat(v) for k, v in new_slots.items()}, stats, value

    def flat_loss(p, stats, batch):
        return loss(layout.unflatten(Flat(layout, (p,))), stats, batch)

    flat_grad = jax.value_and_grad(flat_loss, has_aux=True)

    def flat(p, slots, stats, batch, it, count):
        (value, stats), g = flat_grad(p, stats, batch)
        new_p, new_slots = apply_flat(p, g, slots, it, count)
        return new_p, new_slots, stats, value

    def grad_tree(params, stats, batch):
        return grad(params, stats, batch)[1]

    def grad_flat(p, stats, batch):
        return flat_grad(p, stats, batch)[1]

    jit = lambda f: jax.jit(f, donate_argnums=(0, 1, 2))
    return (jit(tree), jit(flat), jax.jit(grad_tree), jax.jit(grad_flat),
            init_tree, init_flat)


def run_case(case, rounds, steps_per_round=3):
    name, config, params, stats, batch, loss = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recipe = read_recipe(load(config), params, SPE)
    layout = make_layout(recipe, params)
    tree, flat, grad_tree, grad_flat, init_tree, init_flat = steps(recipe, layout, loss)
    leaves = jax.tree.leaves(params)
    p_flat = layout.flatten(params)["float32"]
    copy = lambda t: jax.tree.map(lambda x: jnp.array(x, copy=True), t)
    state = {"tree": [copy(params), init_tree(params), copy(stats)],
             "flat": [p_flat, init_flat(p_flat), copy(stats)]}
    args = lambda v, i: (*state[v], batch, jnp.int32(i), jnp.int32(i))
    fns = {"tree": tree, "flat": flat}
    compiled, info = {}, {}
    for v in ("tree", "flat"):
        compiled[v], info[v] = compile_aot(fns[v], *args(v, 0))
    compiled["grad tree"], info["grad tree"] = compile_aot(grad_tree, params, stats, batch)
    p0 = state["flat"][0]
    compiled["grad flat"], info["grad flat"] = compile_aot(grad_flat, p0, stats, batch)
    it = {"tree": 0, "flat": 0}

    def run(v):
        if v.startswith("grad"):
            src = state["tree"][0] if v == "grad tree" else state["flat"][0]
            return jax.block_until_ready(compiled[v](src, stats, batch))
        out = compiled[v](*args(v, it[v]))
        state[v] = list(out[:3])
        it[v] += 1
        jax.block_until_ready(out)

    for _ in range(3):  # warm-up, and the same number of updates for the check below
        for v in ("tree", "flat"):
            run(v)
    flat_tree = layout.unflatten(Flat(layout, (state["flat"][0],)))
    dev = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.maximum(1, np.abs(b))))
              for a, b in zip(jax.tree.leaves(flat_tree), jax.tree.leaves(state["tree"][0])))
    times = {v: [] for v in compiled}
    faults = {v: [] for v in compiled}
    for _ in range(rounds):
        for v in compiled:
            ts = []
            for _ in range(steps_per_round):
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter()
                run(v)
                ts.append(time.perf_counter() - t0)
                faults[v].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            times[v].append(statistics.median(ts))
    med = {v: statistics.median(t) * 1e3 for v, t in times.items()}
    ratio = lambda a, b: statistics.median(x / y for x, y in zip(times[a], times[b]))
    n_params = sum(x.size for x in leaves)
    return (f"| {name} | {len(leaves)} / {n_params / 1e6:.2f}M | {med['tree']:.1f} | "
            f"{med['flat']:.1f} | {ratio('flat', 'tree'):.2f} | {med['grad tree']:.1f} | "
            f"{med['grad flat']:.1f} | {ratio('grad flat', 'grad tree'):.2f} | "
            f"{info['tree']['compile_s']:.2f} / {info['flat']['compile_s']:.2f} | "
            f"{info['grad tree']['compile_s']:.2f} / {info['grad flat']['compile_s']:.2f} | "
            f"{statistics.median(faults['tree']):.0f} / {statistics.median(faults['flat']):.0f} | "
            f"{info['tree']['temp'] / 2**20:.0f} / {info['flat']['temp'] / 2**20:.0f} | "
            f"{dev:.0e} |")


def train_table(rounds=5):
    rng = np.random.default_rng(0)
    rows = []
    for case in (resnet_case(rng), vit_case(rng)):
        print(f"train step: {case[0]}", flush=True)
        rows.append(run_case(case, rounds))
        print("  " + rows[-1], flush=True)
    head = ("| model | tensors / params | tree ms | flat ms | flat/tree | grad tree ms | "
            "grad flat ms | grad flat/tree | compile s tree / flat | compile s grad tree / "
            "flat | page faults / step tree / flat | scratch MiB tree / flat | max dev. flat "
            "from tree |")
    allocator = os.environ.get("LD_PRELOAD", "") or "glibc malloc"
    return "\n".join([f"Allocator: {allocator} {os.environ.get('MALLOC_CONF', '')}", "",
                      head, "|" + "---|" * 13] + rows)


if __name__ == "__main__":
    import sys

    print(train_table(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
