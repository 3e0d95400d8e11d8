"""How much of an accumulate-only micro-step is the call itself (argument dispatch).

    python bench/dispatch_floor.py [--tree resnet50] [--rounds 5]

The hand-fused accumulate function (b) takes the accumulator and the gradients; a
step of ``build_optimizer``'s transformation through ``oss.update_and_apply`` (a-ip)
takes the params and the whole optimizer state too, since the same jitted function
runs the update micro-steps. Each jitted call costs a few microseconds per argument
buffer. This script times, in interleaved rounds, both real accumulate-only
micro-steps and an identity function with exactly the same (donated) arguments, so
the difference between the two real steps splits into dispatch and work.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import jax
from bench_update import SPE, TREES, load
from trees import make_grads, make_tree, to_device
from variants import optax_step

import optax_selfsup as oss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default="resnet50", choices=sorted(TREES))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    cfg = load("byol")
    shapes = TREES[args.tree]()
    params = make_tree(shapes)
    grads = jax.tree.map(jax.numpy.asarray, make_grads(shapes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=SPE)
    k = 16
    p, s = to_device(params), tx.init(to_device(params))
    acc = jax.tree.map(jax.numpy.zeros_like, to_device(params))
    step = optax_step(tx, in_place=True)
    add = jax.jit(lambda a, g: jax.tree.map(lambda x, y: x + y * (1.0 / k), a, g),
                  donate_argnums=(0,))
    same_ip = jax.jit(lambda p, s, g: (p, s), donate_argnums=(0, 1))
    same_b = jax.jit(lambda a, g: a, donate_argnums=(0,))
    box = {"p": p, "s": s, "acc": acc}

    def a_ip():  # accumulate-only micro-steps of one group (the update is not timed)
        box["p"], box["s"] = step(box["p"], box["s"], grads)
        jax.block_until_ready(box["p"])

    def floor_ip():
        box["p"], box["s"] = same_ip(box["p"], box["s"], grads)
        jax.block_until_ready(box["p"])

    def b():
        box["acc"] = add(box["acc"], grads)
        jax.block_until_ready(box["acc"])

    def floor_b():
        box["acc"] = same_b(box["acc"], grads)
        jax.block_until_ready(box["acc"])

    n_args = {"a-ip": len(jax.tree.leaves((p, s, grads))), "b": 2 * len(jax.tree.leaves(acc))}
    results = {name: [] for name in ("a-ip", "a-ip floor", "b", "b floor")}
    for fn in (floor_ip, b, floor_b):
        fn()  # compile
    a_ip()  # compile; global micro-iteration 0
    it = 1
    for _ in range(args.rounds):
        times = {name: [] for name in results}
        while (it + 1) % k:  # the accumulate-only micro-steps up to the group's end
            for name, fn in (("a-ip", a_ip), ("a-ip floor", floor_ip), ("b", b),
                             ("b floor", floor_b)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
            it += 1
        a_ip()  # the group's update micro-step, untimed
        it += 1
        for name, ts in times.items():
            results[name].append(statistics.median(ts))
    ms = {name: 1e3 * statistics.median(v) for name, v in results.items()}
    print(f"{args.tree}, BYOL accumulate-only micro-step, median of {args.rounds} rounds (ms)\n")
    print("| | step | same arguments, identity body | argument buffers |")
    print("|---|---|---|---|")
    for v in ("a-ip", "b"):
        print(f"| {v} | {ms[v]:.2f} | {ms[v + ' floor']:.2f} | {n_args[v]} |")
    gap, floor_gap = ms["a-ip"] - ms["b"], ms["a-ip floor"] - ms["b floor"]
    print(f"\na-ip/b {ms['a-ip'] / ms['b']:.2f}; gap {gap:.2f} ms, of which dispatch of the "
          f"extra arguments {floor_gap:.2f} ms; without it "
          f"{(ms['a-ip'] - ms['a-ip floor']) / (ms['b'] - ms['b floor']):.2f}")


if __name__ == "__main__":
    main()
