"""``optax-selfsup plot``: lr / momentum schedules from optax_selfsup and torch_ref overlaid."""

from __future__ import annotations

import numpy as np

from ..clock import Clock
from ..errors import ConfigError
from .common import add_config_arguments, load_cli_config


def _clock(cfg: dict, steps_per_epoch: int | None) -> Clock:
    runner = cfg.get("runner")
    if runner is None:
        raise ConfigError("the config has no 'runner' (e.g. runner = dict(type="
                          "'EpochBasedRunner', max_epochs=200))")
    return Clock.from_runner_config(runner, steps_per_epoch)


def _base_values(cfg: dict):
    opt = cfg.get("optimizer") or {}
    lr = opt.get("lr", 0.1)
    momentum = opt.get("momentum")
    if momentum is None and "betas" in opt:
        momentum = opt["betas"][0]
    return lr, momentum


def schedule_traces(cfg: dict, clock: Clock):
    """``{'lr': (ours, ref), 'momentum': (ours, ref)}`` over every iteration of the run."""
    import jax
    import jax.numpy as jnp

    from ..schedules import parse_schedule

    lr, momentum = _base_values(cfg)
    its = jnp.arange(clock.max_iters)
    traces = {}
    for kind, base in (("lr", lr), ("momentum", momentum)):
        config = cfg.get(f"{kind}_config")
        if config is None or base is None:
            continue
        schedule = parse_schedule(config, kind, clock)
        group_base = schedule.base_value(base, 0)
        ours = np.asarray(jax.jit(jax.vmap(lambda it, s=schedule, b=group_base: s(it, b)))(its))
        traces[kind] = (ours, _torch_trace(cfg, clock, kind, lr, momentum))
    return traces


def _torch_trace(cfg, clock, kind, lr, momentum):
    try:
        import torch

        import torch_ref
    except ImportError:  # pragma: no cover - torch is an extra
        return None
    param = torch.nn.Parameter(torch.zeros(1))
    if momentum is not None and "betas" in (cfg.get("optimizer") or {}):
        opt = torch.optim.Adam([param], lr=lr, betas=(momentum, 0.999))
    else:
        opt = torch.optim.SGD([param], lr=lr, momentum=momentum or 0.0)
    hook = torch_ref.build_schedule_hook(cfg[f"{kind}_config"], kind, clock.runner_type)
    runner = torch_ref.ScheduleRunner(opt, [hook], steps_per_epoch=clock.steps_per_epoch,
                                      max_epochs=clock.max_epochs, max_iters=clock.max_iters)
    values = []
    key = "lr" if kind == "lr" else ("betas" if "betas" in opt.defaults else "momentum")

    def record(r):
        value = r.optimizer.param_groups[0][key]
        values.append(value[0] if key == "betas" else value)

    runner.run(record)
    return np.asarray(values)


def run(args) -> int:
    cfg = load_cli_config(args)
    clock = _clock(cfg, args.steps_per_epoch)
    traces = schedule_traces(cfg, clock)
    if not traces:
        raise ConfigError(f"{args.config}: no lr_config or momentum_config to plot")
    for kind, (ours, ref) in traces.items():
        if ref is None:
            print(f"{kind}: torch_ref unavailable (install the 'torch' extra)")
            continue
        dev = np.max(np.abs(ours - ref))
        rel = dev / max(np.max(np.abs(ref)), 1e-30)
        print(f"{kind}: max |optax_selfsup - torch_ref| = {dev:.3g} ({rel:.3g} of its peak) "
              f"over {clock.max_iters} iterations")
    if args.output:
        _draw(traces, cfg, clock, args.output)
        print(f"wrote {args.output}")
    return 0


def _draw(traces, cfg, clock, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(traces), 1, figsize=(10, 3.5 * len(traces)), squeeze=False)
    for ax, (kind, (ours, ref)) in zip(axes[:, 0], traces.items()):
        its = np.arange(len(ours))
        if ref is not None:
            ax.plot(its, ref, lw=3, alpha=0.4, label="torch_ref")
        ax.plot(its, ours, lw=1, label="optax_selfsup")
        if clock.steps_per_epoch and clock.max_iters // clock.steps_per_epoch <= 100:
            for e in range(1, clock.max_iters // clock.steps_per_epoch):
                ax.axvline(e * clock.steps_per_epoch, color="grey", lw=0.3)
        warmup = (cfg.get(f"{kind}_config") or {}).get("warmup_iters")
        if (cfg.get(f"{kind}_config") or {}).get("warmup") and warmup:
            by_epoch = cfg[f"{kind}_config"].get("warmup_by_epoch", False)
            ax.axvline(warmup * (clock.steps_per_epoch if by_epoch else 1), color="red",
                       ls="--", lw=1, label="warmup end")
        ax.set_xlabel("iteration")
        ax.set_ylabel(kind)
        ax.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=100)




def add_arguments(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument("-o", "--output", default=None, help="PNG file to write")
