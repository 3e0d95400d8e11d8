"""A small parameter tree named like an MMSelfSup model, and a side-by-side run.

``DEMO_MODEL`` maps torch names to shapes: a ResNet stem and block with its
downsample, ViT blocks and embeddings, a neck, a predictor, SwAV prototypes and
a zero-initialised tensor (the parity suite trains the same tree).

``run_parity(cfg, steps_per_epoch, iters)`` trains the demo tree with
optax_selfsup and with torch_ref (``pip install optax_selfsup[torch]``) on the
same random gradients and returns the largest deviations: what the
``optax-selfsup parity`` command prints.
"""

from __future__ import annotations

import numpy as np

DEMO_MODEL = {
    "backbone.conv1.weight": (8, 3, 3, 3),
    "backbone.bn1.weight": (8,),
    "backbone.bn1.bias": (8,),
    "backbone.layer1.0.conv1.weight": (8, 8, 3, 3),
    "backbone.layer1.0.bn1.weight": (8,),
    "backbone.layer1.0.bn1.bias": (8,),
    "backbone.layer1.0.downsample.0.weight": (8, 8, 1, 1),
    "backbone.layer1.0.downsample.1.weight": (8,),
    "backbone.layer1.0.downsample.1.bias": (8,),
    "backbone.patch_embed.projection.weight": (6, 3, 2, 2),
    "backbone.pos_embed": (1, 5, 6),
    "backbone.cls_token": (1, 1, 6),
    "backbone.mask_token": (1, 1, 6),
    "backbone.layers.0.ln1.weight": (6,),
    "backbone.layers.0.ln1.bias": (6,),
    "backbone.layers.0.attn.qkv.weight": (18, 6),
    "backbone.layers.0.attn.qkv.bias": (18,),
    "backbone.layers.1.ln1.weight": (6,),
    "backbone.layers.1.attn.qkv.weight": (18, 6),
    "backbone.ln1.weight": (6,),
    "neck.mlp.0.weight": (16, 8),
    "neck.mlp.0.bias": (16,),
    "neck.mlp.2.weight": (4, 16),
    "neck.zero_init.weight": (4, 4),
    "head.predictor.0.weight": (4, 4),
    "head.predictor.0.bias": (4,),
    "prototypes.weight": (10, 4),
}


def run_parity(cfg: dict, steps_per_epoch: int | None, iters: int, seed: int = 0) -> dict:
    """Largest |dp|/max(1,|p|) over the run and relative lr deviation at updates."""
    import warnings

    import jax
    import jax.numpy as jnp
    import optax
    import torch

    import torch_ref

    from .builder import build_optimizer
    from .names import nest_names
    from .state import current_hparams, loss_scale

    rng = np.random.default_rng(seed)
    values = {k: (rng.normal(size=s) * 0.5).astype(np.float32) for k, s in DEMO_MODEL.items()}
    values["neck.zero_init.weight"][...] = 0.0
    grads = [{k: (rng.normal(size=s) * 0.1).astype(np.float32) for k, s in DEMO_MODEL.items()}
             for _ in range(iters)]
    tree = nest_names({k: jnp.asarray(v) for k, v in values.items()})
    names = [".".join(str(k.key) for k in path)
             for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rules for tensors the demo model lacks
        tx = build_optimizer(cfg, tree, steps_per_epoch=steps_per_epoch)
    state = tx.init(tree)
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    fp16 = cfg.get("fp16") is not None
    lrs = []
    for g in grads:
        g_tree = nest_names({k: jnp.asarray(v) for k, v in g.items()})
        if fp16:
            scale = loss_scale(state)
            g_tree = jax.tree.map(lambda x, s=scale: x * s, g_tree)
        updates, state = step(tree, state, g_tree)
        tree = optax.apply_updates(tree, updates)
        lrs.append(np.asarray(jax.tree.leaves(current_hparams(state)["lr"]), np.float64))

    named = [(n, torch.nn.Parameter(torch.tensor(values[n]))) for n in names]
    built = torch_ref.build(cfg, named, steps_per_epoch=steps_per_epoch)
    group_of = {id(p): grp for grp in built.optimizer.param_groups for p in grp["params"]}
    ref_lrs = []
    torch_ref.Runner(built).train(
        lambda it: {k: torch.tensor(v) for k, v in grads[it].items()},
        record=lambda r: ref_lrs.append([group_of[id(p)]["lr"] for _, p in named]),
        num_iters=iters)
    ours = dict(zip(names, (np.asarray(x) for x in jax.tree.leaves(tree))))
    param_dev = max(float(np.max(np.abs(ours[n] - p.detach().numpy())
                                 / np.maximum(1.0, np.abs(p.detach().numpy())), initial=0.0))
                    for n, p in named)
    # with accumulation the optimizer's lr is only refreshed at updates: compare params only
    accumulating = (cfg.get("optimizer_config") or {}).get("update_interval", 1) > 1 or fp16
    lr_dev = None
    if not accumulating:
        lrs, ref_lrs = np.asarray(lrs), np.asarray(ref_lrs)
        lr_dev = float(np.max(np.abs(lrs - ref_lrs) / np.maximum(np.abs(ref_lrs), 1e-30)))
    return dict(param=param_dev, lr=lr_dev, iters=iters)
