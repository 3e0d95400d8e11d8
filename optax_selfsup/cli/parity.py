"""``optax-selfsup parity``: train a small MMSelfSup-named parameter tree with
optax_selfsup and with a PyTorch reference on the same random gradients, and say
whether they agree.

The reference of an MMSelfSup 0.x / mmcv 1.x config is torch_ref (torch
optimizers, mmcv-style hooks; pip install 'optax_selfsup[torch]'). That of an
MMEngine config (MMSelfSup 1.x, MMPretrain) is the real MMEngine 0.10.7
``Runner`` with MMPretrain 1.2.0's LARS, Lamb, layer-decay constructor,
weight-decay scheduler and SimSiamHook (pip install
'optax_selfsup[mmengine-ref]').

Without --steps-per-epoch an epoch-based run is compressed: every epoch of the
config gets a few iterations, so about 600 iterations cover the whole schedule
(warmup end, every epoch boundary, the accumulation updates, the end of the
run). It prints what the run covered, the largest deviations (the parameters:
after the last iteration for 0.x, after every iteration for MMEngine configs;
lr and momentum, and for MMEngine configs the weight decay, in force at every
iteration, as the runners log them; the iterations where each side applied an
update) and PASS or FAIL; the exit status is 1 on FAIL.
"""

from __future__ import annotations

from ..errors import ConfigError
from .common import (
    add_config_arguments,
    load_cli_config,
    positive_int,
    require,
    require_mmengine_reference,
    seed,
    tolerance,
)

PARAM_TOL = 1e-5
HPARAM_TOL = 1e-6
MAX_ITERS = 100_000  # the random gradients of every iteration are drawn up front (6 kB each)


def _coverage(report) -> list[str]:
    lines = []
    spe = report.steps_per_epoch
    if report.compressed:
        lines.append(f"compressed run: {report.max_iters // spe} epochs x {spe} iterations "
                     f"= {report.max_iters} iterations (--steps-per-epoch N for another length)")
    run = "the whole run" if report.reached_end else \
        f"a prefix: NOT the end of the run ({report.max_iters} iterations; --iters to extend)"
    lines.append(f"ran iterations 0..{report.iters - 1}, {run}")
    if report.warmup_end is not None:
        if report.warmup_end >= report.max_iters:
            done = f"after the end of the run ({report.max_iters}): the whole run warms up"
        else:
            done = "covered" if report.iters > report.warmup_end else "NOT covered"
        lines.append(f"lr warmup ends at iteration {report.warmup_end}: {done}")
    if spe:
        lines.append(f"epoch boundaries crossed: {report.epochs} (every {spe} iterations)")
    lines.append(_updates_line(report.updates))
    return lines


def _updates_line(updates: list[int]) -> str:
    if not updates:
        return "optimizer updates: none"
    groups = [b - a for a, b in zip([-1, *updates], updates)]  # micro-steps per update
    k = max(set(groups), key=groups.count)
    text = f"optimizer updates: {len(updates)}, "
    text += "one per iteration" if k == 1 else f"one per {k} iterations (accumulation)"
    if groups[-1] != k:
        text += f"; the last at iteration {updates[-1]} after {groups[-1]} (remainder)"
    elif k > 1:
        text += f"; the last at iteration {updates[-1]}"
    return text


def run(args) -> int:
    if args.iters is not None and args.iters > MAX_ITERS:
        raise ConfigError(f"--iters {args.iters}: parity runs at most {MAX_ITERS} iterations")
    cfg = load_cli_config(args)
    from ..config.generation import MMENGINE, generation_of

    if generation_of(cfg, args.config) == MMENGINE:
        require_mmengine_reference("the parity command on an MMEngine config")
    else:
        require("torch_ref", "the parity command")
    from ..demo import run_parity

    report = run_parity(cfg, args.steps_per_epoch, args.iters, seed=args.seed,
                        batch_size=args.batch_size)
    ref = "torch_ref" if report.reference == "torch_ref" else "MMEngine"
    print(f"parity of {args.config} against {report.reference}")
    for line in _coverage(report) + [f"note: {n}" for n in report.notes]:
        print(f"  {line}")
    what = (f"max |optax_selfsup - {ref}| / max(1, largest |p| so far) over every iteration"
            if report.params_every_iteration else
            f"max |optax_selfsup - {ref}| / max(1, |p|) after the last iteration")
    checks = [
        ("params", report.param, args.param_tol, what),
        ("lr", report.lr, args.hparam_tol,
         f"max |optax_selfsup - {ref}| over the run / the parameter's peak lr"),
    ]
    for name, value in (("momentum", report.momentum), ("weight_decay", report.weight_decay)):
        if value is not None:
            checks.append((name, value, args.hparam_tol,
                           f"max |optax_selfsup - {ref}| over the run / its peak"))
    ok = True
    for name, value, tol, what in checks:
        passed = value <= tol
        ok &= passed
        print(f"{name}: {value:.3g} {'<=' if passed else '>'} {tol:g}  ({what})")
    same_updates = report.updates == report.ref_updates
    ok &= same_updates
    if same_updates:
        print("update iterations: identical")
    else:
        first = min(set(report.updates) ^ set(report.ref_updates))
        side = "optax_selfsup" if first in report.updates else ref
        print(f"update iterations: DIFFER from iteration {first}, where only {side} updated "
              f"({len(report.updates)} updates by optax_selfsup, {len(report.ref_updates)} by "
              f"{ref})")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def add_arguments(parser) -> None:
    add_config_arguments(parser, steps_help="iterations per epoch; default: compressed, a few "
                                            "per epoch so that the whole run takes about 600 "
                                            "iterations")
    parser.add_argument("--iters", type=positive_int, default=None, metavar="N",
                        help=f"train only the first N iterations (default: the whole run, cut at "
                             f"2000 iterations; at most {MAX_ITERS})")
    parser.add_argument("--param-tol", type=tolerance, default=PARAM_TOL, metavar="TOL",
                        help=f"largest accepted parameter deviation, relative to max(1, |p|) "
                             f"(default: {PARAM_TOL:g})")
    parser.add_argument("--hparam-tol", type=tolerance, default=HPARAM_TOL, metavar="TOL",
                        help=f"largest accepted lr / momentum deviation, relative to its peak "
                             f"(default: {HPARAM_TOL:g})")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of the initial parameters and the random gradients")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                        help="total batch size of one iteration (processes x per-process "
                             "batch); needed only by an MMEngine auto_scale_lr with "
                             "enable=True, which scales the lr by B / base_batch_size")
