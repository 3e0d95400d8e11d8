"""``optax-selfsup plot``: the lr (and momentum; for MMEngine configs also the weight
decay) of every distinct parameter group over the run, from optax_selfsup and from the
reference, and their difference.

The reference is torch_ref for an MMSelfSup 0.x / mmcv 1.x config, the real MMEngine
``Runner`` for an MMEngine config (MMSelfSup 1.x, MMPretrain; pip install
'optax_selfsup[mmengine-ref]'). The groups are those of a built-in model (--model, as
in ``describe``): one line per distinct base lr / momentum / fix_lr (and weight decay
for MMEngine configs) after the parameter-wise rules. The values
are the ones in force at each iteration, read from the optimizer state of a real
run (zero gradients), so warmup, SimSiam's fixed lr, one-cycle's per-group
``max_lr`` and accumulation all show as they train. Under the curves, a panel
shows optax_selfsup minus torch_ref relative to each group's peak: the curves
themselves are indistinguishable. Dashed: the warmup end; grey: epoch
boundaries (every k-th on long runs). Without --steps-per-epoch the run is
compressed to a few iterations per epoch, like ``parity``. Prints the largest
deviation; writes the figure with -o (needs pip install 'optax_selfsup[plot]').
Needs torch: pip install 'optax_selfsup[torch]'.
"""

from __future__ import annotations

import os
import warnings

from ..errors import ConfigError
from .common import (
    add_config_arguments,
    check_output_file,
    load_cli_config,
    positive_int,
    require,
    require_mmengine_reference,
)

MAX_ITERS = 1_000_000  # zero-gradient runs of both libraries: about 5 s per 20,000 iterations


def group_representatives(cfg: dict, model: str, mmengine: bool = False) -> list[dict]:
    """One describe() row per distinct (lr, momentum, fix_lr; MMEngine: and weight_decay),
    with ``shape``, ``label`` ('<first name> (+n more)'), ``names`` and (MMEngine) ``kind``
    (the module kind optax_selfsup's guess gives: 'norm', 'dwconv' or 'other')."""
    import jax

    from .. import describe, torch_names
    from .describe import model_params

    params = model_params(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = describe(cfg, params)
    shapes = dict(zip(torch_names(params), (leaf.shape for leaf in jax.tree.leaves(params))))
    kinds = {}
    if mmengine:
        from .plot_mmengine import module_layers

        kinds = module_layers(params)[2]
    groups: dict[tuple, dict] = {}
    for row in rows:
        key = (row["lr"], row["momentum"], row["fix_lr"])
        if mmengine:
            key += (row["weight_decay"], kinds[row["name"]])
        group = groups.setdefault(key, dict(row, shape=shapes[row["name"]], names=[],
                                            kind=kinds.get(row["name"])))
        group["names"].append(row["name"])
    for g in groups.values():
        more = len(g["names"]) - 1
        g["label"] = g["name"] + (f" (+{more} more)" if more else "")
        if g["fix_lr"]:
            g["label"] += ", fix_lr"
    if len(groups) == 1:
        only = next(iter(groups.values()))
        only["label"] = f"all {len(rows)} parameters"
    return list(groups.values())


def _ours(cfg, steps, groups, max_iters, **kwargs):
    """Per iteration and group: lr and momentum (and weight decay) in force, from
    ``current_hparams``; ``kwargs`` go to ``build_optimizer`` (MMEngine: the norm and
    depthwise layers of the whole model, which one tensor per group cannot show)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from .. import build_optimizer, current_hparams, nest_names, torch_names

    params = nest_names({g["name"]: jnp.zeros(g["shape"], jnp.float32) for g in groups})
    order = [torch_names(params).index(g["name"]) for g in groups]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = build_optimizer(cfg, params, steps_per_epoch=steps, **kwargs)
    zeros = jax.tree.map(jnp.zeros_like, params)
    stack = lambda tree: None if tree is None else jnp.stack(jax.tree.leaves(tree))

    def step(carry, _):
        p, s = carry
        updates, s = tx.update(zeros, s, p)
        h = current_hparams(s)
        return (optax.apply_updates(p, updates), s), (
            stack(h["lr"]), stack(h["momentum"]), stack(h.get("weight_decay")))

    run = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), None, length=max_iters))
    _, (lr, momentum, weight_decay) = run(params)
    out = {"lr": np.asarray(lr)[:, order]}
    if momentum is not None:
        out["momentum"] = np.asarray(momentum)[:, order]
    if weight_decay is not None:
        out["weight_decay"] = np.asarray(weight_decay)[:, order]
    else:  # nothing schedules it: each group's base value holds
        out["weight_decay"] = np.tile([float(g["weight_decay"] or 0.0) for g in groups],
                                      (max_iters, 1))
    return out


def _reference(cfg, steps, groups):
    """The same from torch_ref's hooks (lr, momentum, SimSiam) in mmcv order."""
    import numpy as np
    import torch

    import torch_ref

    named = [(g["name"], torch.nn.Parameter(torch.zeros(g["shape"]))) for g in groups]
    built = torch_ref.build(cfg, named, steps_per_epoch=steps)
    group_of = [next(grp for grp in built.optimizer.param_groups
                     if any(p is q for q in grp["params"])) for _, p in named]
    hooks = [h for h in built.hooks if h is not built.optimizer_hook]
    runner = torch_ref.ScheduleRunner(built.optimizer, hooks, **built.runner_kwargs)
    lrs, momenta = [], []

    def record(r):
        lrs.append([grp["lr"] for grp in group_of])
        momenta.append([grp["betas"][0] if "betas" in grp else grp.get("momentum")
                        for grp in group_of])

    runner.run(record)
    out = {"lr": np.asarray(lrs)}
    if all(m is not None for m in momenta[0]):
        out["momentum"] = np.asarray(momenta, np.float64)
    return out


def _markers(cfg, clock):
    """Warmup end (lr) and the epoch boundaries to draw, every k-th so at most ~40 show."""
    from .. import parse_schedule

    schedule = parse_schedule(cfg.get("lr_config"), "lr", clock)
    warmup_end = None
    if schedule is not None and schedule.warmup is not None:
        warmup_end = int(schedule.warmup.length)
    return (warmup_end, *_epoch_marks(clock))


def _epoch_marks(clock) -> tuple[list[int], int]:
    """Epoch boundaries to draw, every k-th so at most ~40 show, and k."""
    epochs, every = [], 1
    if clock.steps_per_epoch and clock.max_iters > clock.steps_per_epoch:
        count = clock.max_iters // clock.steps_per_epoch
        every = next(k for k in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 10**9)
                     if count / k <= 40)
        epochs = list(range(every, count, every))
    return epochs, every


def run(args) -> int:
    if args.output:  # before anything is computed
        require("matplotlib", "writing a figure (-o)")
        from matplotlib.backend_bases import FigureCanvasBase

        check_output_file(args.output, "-o", FigureCanvasBase.get_supported_filetypes())
    from ..config.generation import MMENGINE, generation_of

    cfg = load_cli_config(args)
    if generation_of(cfg, args.config) == MMENGINE:
        return _run_mmengine(args, cfg)
    require("torch_ref", "the plot command")

    from .. import Clock
    from ..demo import compressed_steps_per_epoch

    if cfg.get("runner") is None:
        raise ConfigError(f"{args.config}: the config has no 'runner' (e.g. runner = dict("
                          "type='EpochBasedRunner', max_epochs=200)); it fixes the run length")
    steps = args.steps_per_epoch or compressed_steps_per_epoch(cfg)
    clock = Clock.from_runner_config(cfg["runner"], steps)
    if clock.max_iters > MAX_ITERS:
        run = (f"{clock.max_iters // clock.steps_per_epoch} epochs x {clock.steps_per_epoch} "
               "iterations" if clock.epoch_based else "runner.max_iters")
        raise ConfigError(f"{args.config}: this run has {clock.max_iters} iterations ({run}); "
                          f"plot draws at most {MAX_ITERS}: pass a smaller --steps-per-epoch "
                          f"or a shorter run (--cfg-options runner.max_epochs=N or "
                          f"runner.max_iters=N)")
    if cfg.get("lr_config") is None and cfg.get("momentum_config") is None:
        raise ConfigError(f"{args.config}: no lr_config or momentum_config to plot")
    groups = group_representatives(cfg, args.model)
    ours = _ours(cfg, clock.steps_per_epoch, groups, clock.max_iters)
    ref = _reference(cfg, clock.steps_per_epoch, groups)
    kinds = ("lr", "momentum") if cfg.get("momentum_config") is not None else ("lr",)
    traces = _compare(ours, ref, kinds, groups, clock.max_iters, "torch_ref")
    if args.output:
        _draw(args, clock, groups, traces, _markers(cfg, clock), _title(args, cfg, clock),
              "torch_ref")
        print(f"wrote {args.output}")
    return 0


def _run_mmengine(args, cfg) -> int:
    require_mmengine_reference("the plot command on an MMEngine config")
    from . import plot_mmengine

    steps, run = plot_mmengine.setup(args, cfg)
    groups = group_representatives(cfg, args.model, mmengine=True)
    norm, dwconv, _ = plot_mmengine.module_layers(_params(args.model))
    kwargs = {} if args.batch_size is None else {"batch_size": args.batch_size}
    ours = _ours(cfg, steps, groups, run.max_iters, norm_layers=norm, dwconv_layers=dwconv,
                 **kwargs)
    ref = plot_mmengine.reference(cfg, steps, groups, run.max_iters, args.batch_size)
    traces = _compare(ours, ref, ("lr", "momentum", "weight_decay"), groups, run.max_iters,
                      "MMEngine")
    if args.output:
        markers = (run.warmup_end, *_epoch_marks(run))
        _draw(args, run, groups, traces, markers, plot_mmengine.title(args, cfg, run),
              "MMEngine")
        print(f"wrote {args.output}")
    return 0


def _params(model):
    from .describe import model_params

    return model_params(model)


def _compare(ours, ref, kinds, groups, max_iters, who) -> dict:
    """Print each kind's largest deviation; ``{kind: (ours, ref)}`` of those both sides have."""
    import numpy as np

    traces = {}
    for kind in kinds:
        if kind not in ours or kind not in ref:
            continue
        dev = np.abs(ours[kind] - ref[kind]).max(axis=0)
        peak = np.maximum(np.abs(ref[kind]).max(axis=0), 1e-30)
        traces[kind] = (ours[kind], ref[kind])
        worst = int(np.argmax(dev / peak))
        print(f"{kind}: max |optax_selfsup - {who}| = {dev.max():.3g} "
              f"({(dev / peak).max():.3g} of its peak) over {max_iters} iterations, "
              f"{len(groups)} group(s); worst: {groups[worst]['label']}")
    return traces


def _title(args, cfg, clock) -> str:
    from ..config.mmcv1_hooks import parse_hooks

    opt = cfg.get("optimizer") or {}
    name = os.path.basename(args.config)
    lines = [f"{name}: {opt.get('type', '?')} lr={opt.get('lr', '?')}"]
    run = (f"{clock.max_iters // clock.steps_per_epoch} epochs x {clock.steps_per_epoch} "
           f"iterations" if clock.epoch_based else f"{clock.max_iters} iterations")
    if not args.steps_per_epoch and clock.epoch_based:
        run += " (compressed)"
    k = parse_hooks(cfg).update_interval
    if k > 1:
        run += f"; accumulation: one update per {k} iterations"
    lines.append(run)
    return "\n".join(lines)


def _draw(args, clock, groups, traces, markers, title, who):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    warmup_end, epochs, every = markers
    rows = []
    for kind in traces:
        rows += [(kind, "value"), (kind, "deviation")]
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 2.2 * len(rows) + 1.5), sharex=True,
                             gridspec_kw=dict(height_ratios=[3, 1.4] * len(traces)),
                             squeeze=False)
    its = np.arange(clock.max_iters)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (kind, panel) in zip(axes[:, 0], rows):
        ours, ref = traces[kind]
        for j, group in enumerate(groups):
            color = colors[j % len(colors)]
            if panel == "value":
                ax.plot(its, ref[:, j], color=color, lw=3, alpha=0.3)
                ax.plot(its, ours[:, j], color=color, lw=1, label=group["label"])
            else:
                peak = max(np.abs(ref[:, j]).max(), 1e-30)
                ax.plot(its, (ours[:, j] - ref[:, j]) / peak, color=color, lw=0.8)
        for e in epochs:
            ax.axvline(e * clock.steps_per_epoch, color="grey", lw=0.4, alpha=0.5)
        if warmup_end is not None and warmup_end < clock.max_iters:
            ax.axvline(warmup_end, color="red", ls="--", lw=1)
        if panel == "value":
            ax.set_ylabel(kind)
        else:
            ax.set_ylabel(f"{kind}: (ours - {who})\n/ peak", fontsize=8)
            ax.axhline(0, color="black", lw=0.5)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], color="grey", lw=3, alpha=0.3),
                Line2D([], [], color="grey", lw=0.6)]
    labels += [f"thick, faint: {who}", "thin: optax_selfsup"]
    if epochs:
        handles.append(Line2D([], [], color="grey", lw=0.4))
        labels.append("epoch boundary" + (f" (every {every}th)" if every > 1 else ""))
    if warmup_end is not None and warmup_end < clock.max_iters:
        handles.append(Line2D([], [], color="red", ls="--", lw=1))
        labels.append(f"warmup end (iteration {warmup_end})")
    axes[0, 0].legend(handles, labels, fontsize=7, loc="best")
    axes[-1, 0].set_xlabel("iteration")
    if clock.steps_per_epoch:
        spe = clock.steps_per_epoch
        top = axes[0, 0].secondary_xaxis("top", functions=(lambda i: i / spe, lambda e: e * spe))
        top.set_xlabel("epoch", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    plt.close(fig)


def add_arguments(parser) -> None:
    add_config_arguments(parser, steps_help="iterations per epoch; default: compressed, a few "
                                            "per epoch so that the whole run takes about 600 "
                                            "iterations (the shape of every schedule is kept)")
    parser.add_argument("-o", "--output", default=None, metavar="PNG",
                        help="write the figure to this file (needs matplotlib: "
                             "pip install 'optax_selfsup[plot]')")
    parser.add_argument("--model", default="demo", metavar="NAME",
                        help="whose parameter groups to draw: 'demo' (default) or a model of "
                             "optax_selfsup.models, as in the describe command")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                        help="total batch size of one iteration; needed only by an MMEngine "
                             "auto_scale_lr with enable=True")

