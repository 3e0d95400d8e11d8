"""Cost of one optimizer micro-step: build_optimizer vs hand-fused jnp, stock optax, torch.

    python bench/bench_update.py --quick          # ResNet-50 tree, SimCLR + BYOL, < 3 min
    python bench/bench_update.py                  # both trees, every config, compile scan
    python bench/bench_update.py --leaves 1000,3000,10000 --skip-steps   # compile scan only

A full run (no --quick, --trees, --configs or --skip-steps) rewrites the tables of
bench/README.md; a partial one only prints them unless given --readme FILE.

Parameter trees shaped like ResNet-50 (161 tensors, 25.6M) and ViT-B/16 (150
tensors, 85.8M) with MMSelfSup's torch names (bench/trees.py), float32, are
updated with the configs in configs/ (SimCLR with grad_clip 2.0 added, BYOL
accum16, MAE, ViT fine-tune with layer decay) by (a) build_optimizer, (b) a
hand-fused jnp step with the same maths (bench/fused.py; checked against (a)
here and in parity_tests/test_bench_smoke.py), (c) the nearest stock optax
chain and (d) torch_ref in eager torch (+ torch.optim foreach where it exists).
Variants run in interleaved rounds (a, b, c, d, a, b, ...); the tables give
medians over rounds of each round's median, ratios per round then medianed, so
background load hits every variant alike. Update and accumulate-only
micro-steps are reported apart. See bench/README.md for the columns and targets.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import resource
import shlex
import statistics
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import hlo_summary  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from fused import read_recipe  # noqa: E402
from report import SHORT, Row, compile_tables, step_tables, write_readme  # noqa: E402
from stock import stock_optax  # noqa: E402
from trees import TREES, count, make_grads, make_tree, tiny_shapes, tree_bytes  # noqa: E402
from variants import Built, Fused, Stock, Torch, compile_aot, has_foreach, optax_step  # noqa: E402

import optax_selfsup as oss  # noqa: E402

CONFIGS = {
    "simclr": ("configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py",
               ["optimizer_config.grad_clip.max_norm=2.0"]),
    "byol": ("configs/selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py", []),
    "mae": ("configs/selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py", []),
    "vit_ft": ("configs/benchmarks/classification/vit-base-p16_ft-8xb128-coslr-100e_in1k.py",
               []),
}
# the ViT layer-decay rule needs backbone.layers.<i>: no vit_ft on the ResNet tree
TREE_CONFIGS = {"resnet50": ("simclr", "byol", "mae"),
                "vit-b16": ("simclr", "byol", "mae", "vit_ft")}
SPE = 1000  # steps per epoch: fixes the schedule, not the cost of a step


def load(name):
    path, options = CONFIGS[name]
    return oss.merge_options(oss.load_config(os.path.join(ROOT, path)), options)


def deviation(flat, ref):
    """max |x - ref| / max(1, |ref|) over all parameters."""
    return max(float(np.max(np.abs(np.asarray(flat[n]) - np.asarray(r))
                            / np.maximum(1.0, np.abs(np.asarray(r))))) for n, r in ref.items())


def run_config(tree, name, args):
    cfg = load(name)
    shapes = TREES[tree]()
    params, grads_np = make_tree(shapes), make_grads(shapes)
    grads = jax.tree.map(jax.numpy.asarray, grads_np)
    recipe = read_recipe(cfg, params, SPE)
    k = recipe.every_k
    flat_np = dict(zip(oss.leaf_names(params), jax.tree.leaves(params)))
    variants = [Built(cfg, params, grads, SPE), Built(cfg, params, grads, SPE, in_place=True),
                Fused(recipe, params, grads), Stock(recipe, params, grads)]
    if not (args.no_torch or args.hlo_only):
        flat_g = dict(zip(oss.leaf_names(grads_np), jax.tree.leaves(grads_np)))
        variants.append(Torch(cfg, flat_np, flat_g, SPE))
        if has_foreach(cfg):
            variants.append(Torch(cfg, flat_np, flat_g, SPE, foreach=True))
    if args.dump_hlo:
        os.makedirs(args.dump_hlo, exist_ok=True)
        for v in variants:
            for part, text in v.hlo.items():
                fname = f"{tree}_{name}_{SHORT[v.label]}_{part}.txt"
                with open(os.path.join(args.dump_hlo, fname), "w") as f:
                    f.write(text())
                hlo_summary.main([os.path.join(args.dump_hlo, fname)])
    if args.hlo_only:
        return []
    # warm-up (all variants end at the same iteration; torch_ref's first ~8 eager steps
    # were seen to take up to 20x longer than later ones)
    warm = k if k > 1 else 8
    for v in variants:
        for it in range(warm):
            v.step(it)
    ref = variants[0].flat_params()
    devs = {v.label: deviation(v.flat_params(), ref) for v in variants[1:]}
    print(f"  after {warm} micro-steps, max |x - x_a| / max(1, |x_a|): "
          + "; ".join(f"{label} {d:.1e}" for label, d in devs.items()))
    if devs["a built in-place"] != 0.0:
        raise AssertionError(f"{tree} {name}: oss.update_and_apply differs from update + "
                             f"apply_updates by {devs['a built in-place']:.2e}")
    if devs["b fused"] > 1e-5:
        raise AssertionError(f"{tree} {name}: the hand-fused step deviates from "
                             f"build_optimizer by {devs['b fused']:.2e}; fix bench/fused.py")
    del ref
    # interleaved rounds
    per_round = {v.label: {"update": [], "accumulate": []} for v in variants}
    faults = {v.label: {"update": [], "accumulate": []} for v in variants}
    it0 = warm
    n = k * args.cycles if k > 1 else args.steps
    for _ in range(args.rounds):
        for v in variants:
            times = {"update": [], "accumulate": []}
            for it in range(it0, it0 + n):
                kind = "accumulate" if k > 1 and (it + 1) % k else "update"
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter()
                v.step(it)
                times[kind].append(time.perf_counter() - t0)
                faults[v.label][kind].append(
                    resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            for kind, ts in times.items():
                if ts:
                    per_round[v.label][kind].append(statistics.median(ts))
        it0 += n
    rows = []
    param_bytes = tree_bytes(params)
    for kind in ("update", "accumulate") if k > 1 else ("update",):
        rows.append(Row(tree=tree, config=name, kind=kind, k=k, groups=recipe.num_groups,
                        times={lbl: r[kind] for lbl, r in per_round.items()},
                        faults={lbl: statistics.median(f[kind]) for lbl, f in faults.items()},
                        info={v.label: v.info[kind] for v in variants if v.info},
                        state={v.label: v.state_bytes / param_bytes for v in variants},
                        param_bytes=param_bytes, devs=devs))
    del variants
    gc.collect()
    return rows


def compile_seconds(tx, params):
    """Trace + lower + compile of ``update + apply_updates`` (no arrays allocated)."""
    struct = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), params)
    state = jax.eval_shape(tx.init, struct)
    return compile_aot(optax_step(tx), struct, state, struct)[1]["compile_s"]


def num_groups(cfg, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = oss.describe(cfg, params, steps_per_epoch=SPE)
    return len({(r["lr"], r["weight_decay"], r["lars_exclude"]) for r in rows})


def compile_scan(args):
    rows = []
    cfg = load("simclr")
    for n in args.leaves:
        shapes = tiny_shapes(n)
        params = make_tree(shapes)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tx = oss.build_optimizer(cfg, params, steps_per_epoch=SPE)
        build = time.perf_counter() - t0
        ours = compile_seconds(tx, params)
        stock = compile_seconds(stock_optax(read_recipe(cfg, params, SPE), params), params)
        sgd = compile_seconds(optax.sgd(0.1, momentum=0.9), params)
        rows.append(("SimCLR (LARS+clip)", f"{n} tiny leaves", num_groups(cfg, params), build,
                     ours, stock, sgd))
        print(f"  {n} leaves: build {build:.1f}s compile {ours:.1f}s, stock optax (c) "
              f"{stock:.1f}s, optax.sgd {sgd:.1f}s")
    vit = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, np.float32), TREES["vit-b16"](),
                       is_leaf=lambda x: isinstance(x, tuple))
    vit = oss.nest_names(vit)
    decay = load("vit_ft")
    one = dict(decay, optimizer={k: v for k, v in decay["optimizer"].items()
                                 if k not in ("constructor", "layer_decay", "model_type",
                                              "paramwise_options")})
    for label, c in (("ViT ft, layer decay", decay), ("ViT ft, one group", one)):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tx = oss.build_optimizer(c, vit, steps_per_epoch=SPE)
        build = time.perf_counter() - t0
        groups = num_groups(c, vit)
        ours = compile_seconds(tx, vit)
        stock = compile_seconds(stock_optax(read_recipe(c, vit, SPE), vit), vit)
        sgd = compile_seconds(optax.sgd(0.1, momentum=0.9), vit)
        rows.append((label, "ViT-B/16 (150)", groups, build, ours, stock, sgd))
        print(f"  {label}: {groups} groups, compile {ours:.1f}s, stock optax (c) {stock:.1f}s, "
              f"optax.sgd {sgd:.1f}s")
    return rows


def machine():
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch
    return (f"{model}, {os.cpu_count()} cores; jax {jax.__version__} ({jax.default_backend()}), "
            f"optax {optax.__version__}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy {np.__version__}, "
            f"python {platform.python_version()}")


def readme_target(args) -> str:
    """Where the tables go: --readme if given, else bench/README.md for a full run only
    (a partial run would replace the full run's tables with its few rows)."""
    if args.readme is not None:
        return args.readme
    partial = args.quick or args.trees or args.configs or args.skip_steps
    return "" if partial else os.path.join(HERE, "README.md")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="ResNet-50 tree, SimCLR + BYOL only, 3 rounds, no compile scan")
    parser.add_argument("--trees", default=None, help="comma list of " + ", ".join(TREES))
    parser.add_argument("--configs", default=None, help="comma list of " + ", ".join(CONFIGS))
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=5, help="update steps per round")
    parser.add_argument("--cycles", type=int, default=1,
                        help="accumulation cycles (k micro-steps each) per round")
    parser.add_argument("--leaves", default=None,
                        help="compile scan sizes, e.g. 1000,3000,10000 (full default 1000,3000)")
    parser.add_argument("--skip-steps", action="store_true", help="compile scan only")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--dump-hlo", default=None,
                        help="write the optimized HLO of a, b, c here and summarize it")
    parser.add_argument("--hlo-only", action="store_true",
                        help="with --dump-hlo: compile and summarize, no timing")
    parser.add_argument("--readme", default=None,
                        help="where to write the tables ('' to skip); default: bench/README.md "
                             "for a full run, nowhere for a partial one (--quick, --trees, "
                             "--configs, --skip-steps), which would replace the full tables")
    parser.add_argument("--note", default="", help="a line for the README (e.g. 'quiet machine')")
    args = parser.parse_args(argv)
    args.readme = readme_target(args)
    quick = args.quick
    trees = args.trees.split(",") if args.trees else (["resnet50"] if quick else list(TREES))
    args.rounds = args.rounds or (3 if quick else 5)
    leaves = args.leaves or ("" if quick or args.hlo_only else "1000,3000")
    args.leaves = [int(x) for x in leaves.split(",") if x]
    started, load0 = datetime.datetime.now(), os.getloadavg()[0]
    t_start = time.perf_counter()
    print(machine())
    rows = []
    if not args.skip_steps:
        for tree in trees:
            tensors, size = count(TREES[tree]())
            names = args.configs.split(",") if args.configs else (
                ("simclr", "byol") if quick else TREE_CONFIGS[tree])
            for name in names:
                print(f"{tree} ({tensors} tensors, {size / 1e6:.1f}M) {name}")
                rows.extend(run_config(tree, name, args))
    scan = compile_scan(args) if args.leaves else []
    tables = step_tables(rows) + compile_tables(scan)
    print("\n".join(tables))
    wall = time.perf_counter() - t_start
    load1 = os.getloadavg()[0]
    print(f"wall {wall:.0f}s, load average {load0:.1f} -> {load1:.1f}")
    if args.readme and not args.hlo_only:  # an HLO-only run has no tables to write
        command = "python bench/bench_update.py " + shlex.join(sys.argv[1:] if argv is None
                                                               else argv)
        write_readme(args.readme, tables, command=command.strip(), machine=machine(),
                     when=started.strftime("%Y-%m-%d %H:%M"), wall=wall,
                     load=(load0, load1), note=args.note)


if __name__ == "__main__":
    main()
