"""The flat layout (optax_selfsup/layout) against the per-tensor hand-fused step (b).

    python bench/flat_layout.py                      # both trees, every config, compile scan
    python bench/flat_layout.py --trees resnet50 --configs simclr --alternatives
    python bench/flat_layout.py --skip-steps --leaves 1000,3000,10000
    python bench/flat_layout.py --skip-steps --leaves '' --train   # training steps only

Per tree (ResNet-50, ViT-B/16 shapes from bench/trees.py) and config (SimCLR LARS +
clip, BYOL LARS accum16, MAE AdamW, ViT fine-tune AdamW + layer decay + clip), in
interleaved rounds (probe, b, flat, [alternatives], probe, b, ...):

- **b**: bench/fused.py's hand-fused per-tensor step;
- **flat**: the same maths on one ``[rows, 128]`` buffer (bench/flat_steps.py),
  checked against b after the warm-up (largest ``|x - x_b| / max(1, |x_b|)``);
- **probe**: a donated triad ``x = 1.0001 x + y`` over a buffer of the tree's size (12
  bytes per element), the memory bandwidth XLA's elementwise kernels reach in that
  round. *bound*: the bytes a single pass must move per parameter (SimCLR / BYOL update
  20: read p, g, momentum, write p, momentum; BYOL accumulate 12; AdamW 28) at that
  bandwidth;
- ``--alternatives`` (SimCLR on ResNet-50; ``--alt-trees``, ``--alt-configs``,
  ``--alt-names`` choose others): the norms' row reduction as pairwise halves or a dot
  product per row instead of ``jnp.sum(axis=1)``, without the padding mask (the tail
  rows' masked re-reduction), rows of 64 / 256 / 512 / 1024 instead of 128.

Times are medians over rounds of each round's median; ratios per round, then medianed
(the machine is shared: background load hits every variant of a round alike).
``--leaves``: compile seconds of the flat SimCLR step on trees of tiny tensors against
per-tensor ``optax.sgd`` (and, ``--flatten-inside``, the flat step taking and returning
per-tensor trees). ``--train``: a whole training step (gradient + update) of small Flax
models with the params living flat (bench/flat_train.py).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from bench_update import CONFIGS, SPE, TREE_CONFIGS, load, machine  # noqa: E402
from flat_steps import build_flat, make_layout  # noqa: E402
from fused import read_recipe  # noqa: E402
from trees import TREES, count, make_grads, make_tree, tiny_shapes, tree_bytes  # noqa: E402
from variants import Fused, compile_aot, optax_step  # noqa: E402

import optax_selfsup as oss  # noqa: E402

ALTERNATIVES = {"halves": dict(method="halves"), "row dot": dict(method="dot"),
                "unmasked": dict(masked=False), "w64": dict(width=64),
                "w256": dict(width=256), "w512": dict(width=512), "w1024": dict(width=1024)}
# bytes a single pass moves per float32 parameter (see the module doc)
BYTES = {("LARS", "update"): 20, ("LARS", "accumulate"): 12, ("AdamW", "update"): 28}


class FlatVariant:
    """A flat step on raw buffers: one function, or start / accumulate / update."""

    def __init__(self, label, recipe, params, grads, **layout_kw):
        self.label, self.k = label, recipe.every_k
        self.layout = make_layout(recipe, params, **layout_kw)
        self.fused = build_flat(recipe, self.layout)
        self.p = self.layout.flatten(params)["float32"]
        self.g = self.layout.flatten(grads)["float32"]
        self.state = self.fused.init(self.p)
        self.acc = jnp.zeros_like(self.p) if self.k > 1 else None
        self.fns, infos = {}, {}
        for part in ("step",) if self.k == 1 else ("start", "accumulate", "update"):
            args = ((self.p, self.state, self.g) if part == "step" else
                    (self.p, self.state, self.acc, self.g) if part == "update" else
                    (self.acc, self.g))
            self.fns[part], infos[part] = compile_aot(getattr(self.fused, part), *args)
        upd = infos["step" if self.k == 1 else "update"]
        acc = infos.get("accumulate", upd)
        if self.k > 1:
            acc = dict(acc, compile_s=infos["start"]["compile_s"] + acc["compile_s"])
        self.info = {"update": upd, "accumulate": acc}

    def step(self, it):
        kind = self.fused.micro_step(it)
        if kind == "step":
            self.p, self.state = self.fns[kind](self.p, self.state, self.g)
        elif kind == "update":
            self.p, self.state, self.acc = self.fns[kind](self.p, self.state, self.acc, self.g)
        else:
            self.acc = self.fns[kind](self.acc, self.g)
            return jax.block_until_ready(self.acc)
        jax.block_until_ready(self.p)

    def flat_params(self):
        from optax_selfsup.layout import Flat

        tree = self.layout.unflatten(Flat(self.layout, (self.p,)))
        return dict(zip(oss.leaf_names(tree), jax.tree.leaves(tree)))


class BuiltFlat:
    """``build_optimizer(cfg, params, layout='flat')`` with the params living flat, stepped
    by ``oss.update_and_apply`` (one donated function for every micro-step)."""

    def __init__(self, label, cfg, params, grads):
        self.label = label
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tx = oss.build_optimizer(cfg, params, steps_per_epoch=SPE, layout="flat")
            self.layout = oss.flat_layout(cfg, params)
        self.p, self.g = self.layout.flatten(params), self.layout.flatten(grads)
        self.state = tx.init(self.p)
        self.fn, info = compile_aot(optax_step(tx, in_place=True), self.p, self.state, self.g)
        self.info = {"update": info, "accumulate": info}

    def step(self, it):
        self.p, self.state = self.fn(self.p, self.state, self.g)
        jax.block_until_ready(self.p)

    def flat_params(self):
        tree = self.layout.unflatten(self.p)
        return dict(zip(oss.leaf_names(tree), jax.tree.leaves(tree)))


class Probe:
    """Donated triad over ``size`` float32 elements: 12 bytes per element per call."""

    label = "probe"

    def __init__(self, size):
        rows = -(-size // 128)
        self.n = rows * 128
        self.x = jnp.ones((rows, 128), jnp.float32)
        self.y = jnp.full((rows, 128), 1e-3, jnp.float32)
        self.fn = jax.jit(lambda x, y: x * 0.5 + y, donate_argnums=(0,))
        self.x = self.fn(self.x, self.y)

    def step(self, it):
        self.x = self.fn(self.x, self.y)
        jax.block_until_ready(self.x)

    def bandwidth(self, seconds):
        return 12 * self.n / seconds


def deviation(flat, ref):
    return max(float(np.max(np.abs(np.asarray(flat[n]) - np.asarray(r))
                            / np.maximum(1.0, np.abs(np.asarray(r))))) for n, r in ref.items())


def run_config(tree, name, args):
    cfg = load(name)
    shapes = TREES[tree]()
    params, grads_np = make_tree(shapes), make_grads(shapes)
    grads = jax.tree.map(jnp.asarray, grads_np)
    recipe = read_recipe(cfg, params, SPE)
    k = recipe.every_k
    variants = [Probe(count(shapes)[1]), Fused(recipe, params, grads),
                FlatVariant("flat", recipe, params, grads)]
    if not args.no_built:
        variants.append(BuiltFlat("built flat", cfg, params, grads))
    if args.alternatives and name in args.alt_configs.split(",") and \
            tree in args.alt_trees.split(","):
        names = args.alt_names.split(",") if args.alt_names else list(ALTERNATIVES)
        variants += [FlatVariant(f"flat {a}", recipe, params, grads, **ALTERNATIVES[a])
                     for a in names]
    warm = k if k > 1 else 8
    for v in variants:
        for it in range(warm):
            v.step(it)
    ref = variants[1].flat_params()
    devs = {v.label: deviation(v.flat_params(), ref) for v in variants[2:]}
    print(f"  after {warm} micro-steps, max |x - x_b| / max(1, |x_b|): "
          + "; ".join(f"{label} {d:.1e}" for label, d in devs.items()), flush=True)
    if max(devs.values()) > 1e-5:
        raise AssertionError(f"{tree} {name}: a flat step deviates from b: {devs}")
    times = {v.label: {"update": [], "accumulate": []} for v in variants}
    it0, n = warm, (k * args.cycles if k > 1 else args.steps)
    for _ in range(args.rounds):
        for v in variants:
            ts = {"update": [], "accumulate": []}
            for it in range(it0, it0 + n):
                kind = "accumulate" if k > 1 and (it + 1) % k else "update"
                t0 = time.perf_counter()
                v.step(it)
                ts[kind if v.label != "probe" else "update"].append(time.perf_counter() - t0)
            for kind, t in ts.items():
                if t:
                    times[v.label][kind].append(statistics.median(t))
        it0 += n
    probe = variants[0]
    bws = [probe.bandwidth(s) for s in times["probe"]["update"]]
    size, pbytes = count(shapes)[1], tree_bytes(params)
    layout = variants[2].layout
    rows = []
    for kind in ("update", "accumulate") if k > 1 else ("update",):
        nbytes = BYTES[(recipe.optimizer, kind)]
        bound = [nbytes * size / bw for bw in bws]
        flat_labels = [v.label for v in variants[2:]]
        b_t = times["b fused"][kind]
        cells = dict(tree=tree, config=name, kind=kind if k == 1 else f"{kind} (k={k})",
                     bw=statistics.median(bws) / 1e9, bytes=nbytes,
                     bound=statistics.median(bound) * 1e3, b=statistics.median(b_t) * 1e3,
                     b_compile=variants[1].info[kind]["compile_s"],
                     b_scratch=100 * variants[1].info[kind]["temp"] / pbytes,
                     padding=100 * layout.padding_fraction, flat={})
        for v, label in zip(variants[2:], flat_labels):
            t = times[label][kind]
            cells["flat"][label] = dict(
                ms=statistics.median(t) * 1e3,
                over_b=statistics.median(x / y for x, y in zip(t, b_t)),
                over_bound=statistics.median(x / y for x, y in zip(t, bound)),
                compile=v.info[kind]["compile_s"], scratch=100 * v.info[kind]["temp"] / pbytes,
                padding=100 * v.layout.padding_fraction, dev=devs[label])
        rows.append(cells)
    del variants
    return rows


def step_table(rows):
    out = ["| tree | config | micro-step | bandwidth GB/s | bound ms (B/param) | b ms | flat ms |"
           " flat/b | flat/bound | compile s b / flat | scratch % b / flat | padding % |"
           " max dev. from b |", "|" + "---|" * 13]
    alts = []
    for r in rows:
        f = r["flat"]["flat"]
        out.append(f"| {r['tree']} | {r['config']} | {r['kind']} | {r['bw']:.1f} | "
                   f"{r['bound']:.1f} ({r['bytes']}) | {r['b']:.1f} | {f['ms']:.1f} | "
                   f"{f['over_b']:.2f} | {f['over_bound']:.2f} | {r['b_compile']:.2f} / "
                   f"{f['compile']:.2f} | {r['b_scratch']:.1f} / {f['scratch']:.1f} | "
                   f"{f['padding']:.3f} | {f['dev']:.0e} |")
        for label, a in r["flat"].items():
            if label != "flat":
                alts.append(f"| {r['tree']} | {r['config']} | {r['kind']} | {label} | "
                            f"{a['ms']:.1f} | {a['over_b']:.2f} | "
                            f"{a['over_b'] / f['over_b']:.2f} | {a['compile']:.2f} | "
                            f"{a['padding']:.3f} | {a['dev']:.0e} |")
    text = "\n".join(out)
    if alts:
        text += ("\n\n| tree | config | micro-step | alternative | ms | x b | x flat | compile s |"
                 " padding % | max dev. from b |\n|" + "---|" * 10 + "\n" + "\n".join(alts))
    return text


def tree_step(layout, fused):
    """The flat step taking and returning per-tensor trees (flatten / unflatten inside)."""
    from optax_selfsup.layout import Flat

    def step(p, state, g):
        fp, fg = layout.flatten(p)["float32"], layout.flatten(g)["float32"]
        new_p, state = fused.step.__wrapped__(fp, state, fg)
        return layout.unflatten(Flat(layout, (new_p,))), state

    return step


def compile_scan(leaves, flatten_inside):
    cfg = load("simclr")
    out = ["| tensors | flat step compile s | layout build s | built flat compile s | "
           "built flat build + init s | "
           + ("flat step on per-tensor trees compile s | " if flatten_inside else "")
           + "optax.sgd per-tensor compile s | flat / sgd | built flat / sgd |", None]
    for n in leaves:
        params = make_tree(tiny_shapes(n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            recipe = read_recipe(cfg, params, SPE)
        t0 = time.perf_counter()
        layout = make_layout(recipe, params)
        build = time.perf_counter() - t0
        fused = build_flat(recipe, layout)
        spec = jax.ShapeDtypeStruct((layout.buffer_rows["float32"], 128), jnp.float32)
        state = jax.eval_shape(fused.init, spec)
        flat_s = compile_aot(fused.step, spec, state, spec)[1]["compile_s"]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tx = oss.build_optimizer(cfg, params, steps_per_epoch=SPE, layout="flat")
            built_layout = oss.flat_layout(cfg, params)
        abstract = built_layout.abstract()
        b_state = jax.eval_shape(tx.init, abstract)
        built_build = time.perf_counter() - t0
        built_s = compile_aot(optax_step(tx, in_place=True), abstract, b_state,
                              abstract)[1]["compile_s"]
        cells = [str(n), f"{flat_s:.2f}", f"{build:.2f}", f"{built_s:.2f}",
                 f"{built_build:.2f}"]
        if flatten_inside:
            struct = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
            step = jax.jit(tree_step(layout, fused), donate_argnums=(0, 1))
            t_s = compile_aot(step, struct, state, struct)[1]["compile_s"]
            cells.append(f"{t_s:.2f}")
        if n <= 3000:
            struct = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
            tx = optax.sgd(0.1, momentum=0.9)
            sgd = compile_aot(optax_step(tx), struct, jax.eval_shape(tx.init, struct),
                              struct)[1]["compile_s"]
            cells += [f"{sgd:.2f}", f"{flat_s / sgd:.3f}", f"{built_s / sgd:.3f}"]
        else:  # bench/README.md's compile_layouts.py --leaves 10000 figure (15 min to rerun)
            cells += ["70 (published)", f"{flat_s / 70:.4f}", f"{built_s / 70:.4f}"]
        out.append("| " + " | ".join(cells) + " |")
        print("  " + out[-1], flush=True)
    out[1] = "|" + "---|" * (len(out[0].split("|")) - 2)
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", default=",".join(TREES))
    ap.add_argument("--configs", default=None, help="comma list of " + ", ".join(CONFIGS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=1)
    ap.add_argument("--alternatives", action="store_true")
    ap.add_argument("--alt-names", default="", help="comma list of " + ", ".join(ALTERNATIVES))
    ap.add_argument("--alt-trees", default="resnet50")
    ap.add_argument("--alt-configs", default="simclr")
    ap.add_argument("--skip-steps", action="store_true")
    ap.add_argument("--leaves", default="1000,3000,10000")
    ap.add_argument("--flatten-inside", action="store_true")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--no-built", action="store_true",
                    help="leave out build_optimizer(layout='flat') (the 'built flat' rows)")
    args = ap.parse_args(argv)
    print(machine(), flush=True)
    started, load0, t0 = datetime.datetime.now(), os.getloadavg(), time.perf_counter()
    tables = []
    if not args.skip_steps:
        rows = []
        for tree in args.trees.split(","):
            names = args.configs.split(",") if args.configs else TREE_CONFIGS[tree]
            for name in names:
                print(f"{tree} {name}", flush=True)
                rows += run_config(tree, name, args)
        tables.append(step_table(rows))
    leaves = [int(x) for x in args.leaves.split(",") if x]
    if leaves:
        tables.append(compile_scan(leaves, args.flatten_inside))
    if args.train:
        from flat_train import train_table

        tables.append(train_table(args.rounds))
    load1 = os.getloadavg()
    print(f"\n{started:%Y-%m-%d %H:%M}, {time.perf_counter() - t0:.0f} s wall; load average "
          f"(1, 5, 15 min) {tuple(round(x, 1) for x in load0)} at the start, "
          f"{tuple(round(x, 1) for x in load1)} at the end\n")
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
