"""A small parameter tree named like an MMSelfSup model, and a side-by-side run.

``DEMO_MODEL`` maps torch names to shapes: a ResNet stem and block with its
downsample, ViT blocks and embeddings, a neck, a predictor, SwAV prototypes and
a zero-initialised tensor (the parity suite trains the same tree).

``run_parity(cfg)`` trains the demo tree with optax_selfsup and with a PyTorch
reference on the same random gradients and returns a ``ParityReport``: the
largest parameter, lr and momentum (and for MMEngine configs weight-decay)
deviations, the iterations where each side applied an update, and what the run
covered. This is what ``optax-selfsup parity`` prints. The reference of an
MMSelfSup 0.x / mmcv 1.x config is torch_ref (torch optimizers, mmcv-style hooks;
``pip install optax_selfsup[torch]``); that of an MMEngine config (MMSelfSup 1.x,
MMPretrain) is the real MMEngine ``Runner`` (``demo_mmengine``;
``pip install optax_selfsup[mmengine-ref]``).

A real run is long (200 epochs of 5005 iterations); the interesting moments are
few: the warmup end, the epoch boundaries, the accumulation updates, the end of
the run. Without ``steps_per_epoch`` the run is compressed: the config's epochs
are kept and each gets ``compressed_steps_per_epoch(cfg)`` iterations, so the
whole schedule (every epoch boundary, the warmup end, the last iteration and its
remainder flush) runs in about 600 iterations.
"""

from __future__ import annotations

import numpy as np

from .demo_tree import (  # noqa: F401 - re-exported: optax_selfsup.demo.DEMO_MODEL, ...
    COMPRESSED_ITERS,
    DEFAULT_MAX_ITERS,
    DEMO_MODEL,
    ParityReport,
    _relative,
    compressed_steps_per_epoch,
    draw,
)


def run_parity(cfg: dict, steps_per_epoch: int | None = None, iters: int | None = None,
               seed: int = 0, batch_size: int | None = None) -> ParityReport:
    """Train ``DEMO_MODEL`` with optax_selfsup and the reference on the same random gradients.

    ``steps_per_epoch=None`` compresses an epoch-based run (see the module
    docstring); ``iters=None`` runs the whole run, cut at ``DEFAULT_MAX_ITERS``.
    ``batch_size``: the total batch size, for an MMEngine ``auto_scale_lr`` that is enabled.
    """
    from . import Clock, ConfigError, parse_schedule
    from .config.generation import MMENGINE, generation_of

    if generation_of(cfg) == MMENGINE:
        from .demo_mmengine import run_parity_mmengine

        return run_parity_mmengine(cfg, steps_per_epoch, iters, seed, batch_size)
    compressed = steps_per_epoch is None
    if compressed:
        steps_per_epoch = compressed_steps_per_epoch(cfg)
    if cfg.get("runner") is None:
        raise ConfigError("the config has no 'runner' (e.g. runner = dict(type="
                          "'EpochBasedRunner', max_epochs=200)); it fixes the run length")
    clock = Clock.from_runner_config(cfg["runner"], steps_per_epoch)
    if iters is None:
        iters = min(clock.max_iters, DEFAULT_MAX_ITERS)
    if not 0 < iters <= clock.max_iters:
        raise ConfigError(f"iters={iters} must be in [1, {clock.max_iters}] (the run's length)")
    lr_schedule = parse_schedule(cfg.get("lr_config"), "lr", clock)
    warmup_end = None
    if lr_schedule is not None and lr_schedule.warmup is not None:
        warmup_end = int(lr_schedule.warmup.length)

    values, grads = draw(seed, iters)
    ours = _run_optax(cfg, steps_per_epoch, values, grads)
    ref = _run_torch(cfg, steps_per_epoch, values, grads, iters)

    param_dev = max(float(np.max(np.abs(ours["params"][n] - ref["params"][n])
                                 / np.maximum(1.0, np.abs(ref["params"][n])), initial=0.0))
                    for n in DEMO_MODEL)
    lr_dev = _relative(ours["lr"], ref["lr"])
    momentum_dev = None
    if ours["momentum"] is not None and ref["momentum"] is not None:
        momentum_dev = _relative(ours["momentum"], ref["momentum"])
    return ParityReport(
        param=param_dev, lr=lr_dev, momentum=momentum_dev, iters=iters,
        max_iters=clock.max_iters, steps_per_epoch=clock.steps_per_epoch,
        compressed=compressed and clock.steps_per_epoch is not None, warmup_end=warmup_end,
        updates=[int(i) for i in np.flatnonzero(ours["updated"])],
        ref_updates=ref["updates"])


def _run_optax(cfg, steps_per_epoch, values, grads) -> dict:
    """The whole run in one compiled ``lax.scan``; per iteration the lr / momentum in
    force (``current_hparams``) and whether an update was applied (``has_updated``)."""
    import warnings

    import jax
    import jax.numpy as jnp
    import optax

    from . import build_optimizer, current_hparams, has_updated, loss_scale, nest_names

    params = nest_names({k: jnp.asarray(v) for k, v in values.items()})
    stacked = nest_names({k: jnp.asarray(v) for k, v in grads.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rules for tensors the demo tree lacks
        tx = build_optimizer(cfg, params, steps_per_epoch=steps_per_epoch)
    fp16 = cfg.get("fp16") is not None or (cfg.get("optimizer_config") or {}).get(
        "type") in ("Fp16OptimizerHook", "GradAccumFp16OptimizerHook")

    def step(carry, g):
        p, s = carry
        if fp16:  # the gradient of the scaled loss
            scale = loss_scale(s)
            g = jax.tree.map(lambda x: x * scale, g)
        updates, s = tx.update(g, s, p)
        p = optax.apply_updates(p, updates)
        h = current_hparams(s)
        momentum = None if h["momentum"] is None else jnp.stack(jax.tree.leaves(h["momentum"]))
        return (p, s), (jnp.stack(jax.tree.leaves(h["lr"])), momentum, has_updated(s))

    run = jax.jit(lambda p, s, g: jax.lax.scan(step, (p, s), g))
    (params, _), (lr, momentum, updated) = run(params, tx.init(params), stacked)
    names = [".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
             for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    flat = dict(zip(names, (np.asarray(x) for x in jax.tree.leaves(params))))
    order = [names.index(n) for n in DEMO_MODEL]
    return dict(params=flat, lr=np.asarray(lr)[:, order],
                momentum=None if momentum is None else np.asarray(momentum)[:, order],
                updated=np.asarray(updated))


def _run_torch(cfg, steps_per_epoch, values, grads, iters) -> dict:
    import torch

    import torch_ref

    named = [(n, torch.nn.Parameter(torch.tensor(values[n]))) for n in DEMO_MODEL]
    built = torch_ref.build(cfg, named, steps_per_epoch=steps_per_epoch)
    optimizer = built.optimizer
    group_of = {id(p): grp for grp in optimizer.param_groups for p in grp["params"]}
    updates, lrs, momenta = [], [], []
    runner = torch_ref.Runner(built)
    step = optimizer.step

    def counted_step(*args, **kwargs):
        updates.append(runner.iter)
        return step(*args, **kwargs)

    optimizer.step = counted_step

    def momentum_of(group):
        return group["betas"][0] if "betas" in group else group.get("momentum")

    def record(r):
        groups = [group_of[id(p)] for _, p in named]
        lrs.append([g["lr"] for g in groups])
        momenta.append([momentum_of(g) for g in groups])

    runner.train(lambda it: {k: torch.tensor(v[it]) for k, v in grads.items()},
                 record=record, num_iters=iters)
    has_momentum = all(m is not None for m in momenta[0])
    return dict(params={n: p.detach().numpy() for n, p in named}, lr=np.asarray(lrs),
                momentum=np.asarray(momenta, np.float64) if has_momentum else None,
                updates=updates)
