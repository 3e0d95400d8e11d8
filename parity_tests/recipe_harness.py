"""A parameter tree named like a real model, and a run of one config on both sides.

``MODEL`` (``optax_selfsup.demo.DEMO_MODEL``) holds torch names and shapes (ResNet stem,
block with downsample, ViT blocks and embeddings, neck, predictor, SwAV prototypes, a
zero-initialised tensor). ``run_jax`` / ``run_torch`` drive both sides with the same
pre-generated gradients and records, at every iteration, the parameters and the
per-parameter lr / momentum in force.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

import optax_selfsup as oss
import torch_ref
from optax_selfsup.demo import DEMO_MODEL
from optax_selfsup.names import nest_names

MODEL = DEMO_MODEL


nest = nest_names


def jax_order(flat: dict) -> list[str]:
    """Torch names in the order of the nested tree's leaves."""
    return [".".join(str(k.key) for k in path)
            for path, _ in jax.tree_util.tree_flatten_with_path(nest(flat))[0]]


def initial_values(seed=0) -> dict:
    rng = np.random.default_rng(seed)
    values = {k: rng.normal(size=s).astype(np.float32) * 0.5 for k, s in MODEL.items()}
    values["neck.zero_init.weight"] = np.zeros(MODEL["neck.zero_init.weight"], np.float32)
    return values


def gradients(steps, seed=1, inf_at=()) -> list[dict]:
    rng = np.random.default_rng(seed)
    seq = [{k: (rng.normal(size=s) * 0.1).astype(np.float32) for k, s in MODEL.items()}
           for _ in range(steps)]
    for it in inf_at:
        seq[it]["neck.mlp.0.weight"][0, 0] = np.inf
    return seq


def run_torch(cfg, values, grads, spe, device="cpu"):
    order = jax_order(values)
    named = [(n, torch.nn.Parameter(torch.tensor(values[n], device=device))) for n in order]
    built = torch_ref.build(cfg, named, steps_per_epoch=spe)
    group_of = {id(p): g for g in built.optimizer.param_groups for p in g["params"]}
    mkey = "betas" if "betas" in built.optimizer.defaults else "momentum"
    params, lrs, moms = [], [], []

    def record(r):
        params.append({n: p.detach().cpu().numpy().copy() for n, p in named})
        lrs.append([group_of[id(p)]["lr"] for _, p in named])
        if mkey in built.optimizer.defaults:
            moms.append([group_of[id(p)][mkey][0] if mkey == "betas" else group_of[id(p)][mkey]
                         for _, p in named])

    torch_ref.Runner(built).train(
        lambda it: {k: torch.tensor(v, device=device) for k, v in grads[it].items()},
        record=record, num_iters=len(grads))
    params.append({n: p.detach().cpu().numpy().copy() for n, p in named})
    return params, np.asarray(lrs), (np.asarray(moms) if moms else None), built


class TorchLayout:
    """The params as a nested dict of torch names (leaves keyed exactly like torch)."""

    @staticmethod
    def to_tree(flat):
        return nest({k: jnp.asarray(v) for k, v in flat.items()})

    @staticmethod
    def to_flat(tree):
        return {".".join(str(k.key) for k in path): np.asarray(v)
                for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def run_jax(cfg, values, grads, spe, *, layout=TorchLayout, name_map="default", fp16=False,
            in_place=False, opt_layout=None, live_flat=False):
    """``layout.to_tree(flat torch-named dict)`` gives the params pytree and
    ``layout.to_flat(tree)`` the torch-named dict back (e.g. Flax names, HWIO kernels).
    ``in_place``: step with ``oss.update_and_apply`` instead of update + apply_updates.
    ``opt_layout``: build_optimizer's ``layout=``; ``live_flat``: with it, the params and
    gradients are handed over as ``Flat`` buffers (else as per-tensor trees)."""
    tree = layout.to_tree(values)
    tx = oss.build_optimizer(cfg, tree, steps_per_epoch=spe, name_map=name_map,
                             layout=opt_layout)
    state = tx.init(tree)
    flat = oss.flat_layout_of(state) if live_flat else None

    @jax.jit
    def step(p, s, g):
        if flat is not None:
            p, g = flat.flatten(p), flat.flatten(g)
        if in_place:
            p, s = oss.update_and_apply(tx, g, s, p)
        else:
            updates, s = tx.update(g, s, p)
            p = optax.apply_updates(p, updates)
        return (p if flat is None else flat.unflatten(p)), s

    order = jax_order(values)
    params, lrs, moms, updated = [], [], [], []
    count = 0
    for g in grads:
        params.append(layout.to_flat(tree))
        grad_tree = layout.to_tree(g)
        if fp16:
            scale = oss.loss_scale(state)
            grad_tree = jax.tree.map(lambda x, s=scale: x * s, grad_tree)
        tree, state = step(tree, state, grad_tree)
        opt_state = _opt_state(state)
        updated.append(int(opt_state.count) > count)
        count = int(opt_state.count)
        hp = oss.current_hparams(state)
        flat_lr = _scalars(layout, hp["lr"])
        lrs.append([flat_lr[n] for n in order])
        if hp["momentum"] is not None:
            flat_m = _scalars(layout, hp["momentum"])
            moms.append([flat_m[n] for n in order])
    params.append(layout.to_flat(tree))
    return params, np.asarray(lrs), (np.asarray(moms) if moms else None), np.asarray(updated)


def _scalars(layout, tree):
    """Per-leaf scalars -> torch-named floats (the layout may reshape arrays, not scalars)."""
    flat_names = list(layout.to_flat(jax.tree.map(lambda x: np.zeros((2, 2, 2, 2)), tree)))
    return dict(zip(flat_names, (float(x) for x in jax.tree.leaves(tree))))


def _opt_state(state):
    kinds = (oss.TorchOptimizerState, oss.FlatOptimizerState)
    found = [s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, kinds))
             if isinstance(s, kinds)]
    return found[0]


def param_error(ours: dict, ref: dict) -> float:
    return max(float(np.max(np.abs(ours[k] - ref[k]) / np.maximum(1.0, np.abs(ref[k])),
                            initial=0.0)) for k in ref)


def rel_error(ours, ref) -> float:
    return float(np.max(np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-30), initial=0.0))
