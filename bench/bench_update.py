"""Update-step cost of optax_selfsup against hand-written optax, in one run.

    python bench/bench_update.py [--small]

A ResNet-50-shaped parameter tree (161 tensors, 25.6M parameters; --small: a
1/16-width tree) is updated by the jitted ``update + apply_updates`` of each
pair below, in interleaved rounds; the script prints the median over rounds
of the step-time ratio optax_selfsup / optax (1.00 = as fast) and of the
compile-time ratio. The hand-written optax chains are the closest stock
equivalents, not numerically identical (optax.lars and MultiSteps differ from
MMSelfSup, see the parity suite). Ratios, not absolute
times, are what carry over between machines.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import jax
import optax

import optax_selfsup as oss
from optax_selfsup.names import nest_names


def resnet50_shapes(width=64):
    shapes = {"conv1.weight": (width, 3, 7, 7), "bn1.weight": (width,), "bn1.bias": (width,)}
    inplanes = width
    for stage, (blocks, planes) in enumerate(zip((3, 4, 6, 3), (width, 2 * width, 4 * width,
                                                                  8 * width)), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}."
            shapes[p + "conv1.weight"] = (planes, inplanes, 1, 1)
            shapes[p + "conv2.weight"] = (planes, planes, 3, 3)
            shapes[p + "conv3.weight"] = (planes * 4, planes, 1, 1)
            for i, c in ((1, planes), (2, planes), (3, planes * 4)):
                shapes[p + f"bn{i}.weight"] = (c,)
                shapes[p + f"bn{i}.bias"] = (c,)
            if b == 0:
                shapes[p + "downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                shapes[p + "downsample.1.weight"] = (planes * 4,)
                shapes[p + "downsample.1.bias"] = (planes * 4,)
            inplanes = planes * 4
    shapes["fc.weight"] = (1000, inplanes)
    shapes["fc.bias"] = (1000,)
    return shapes


def time_step(tx, params, grads, steps):
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    start = time.perf_counter()
    params, state = jax.block_until_ready(step(params, state, grads))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        params, state = jax.block_until_ready(step(params, state, grads))
        times.append(time.perf_counter() - start)
    return statistics.median(times), compile_s


SPE, EPOCHS = 100, 10


def pairs():
    runner = dict(type="EpochBasedRunner", max_epochs=EPOCHS)
    cosine = dict(policy="CosineAnnealing", min_lr=0.0, by_epoch=False)
    opt_cosine = lambda base: optax.cosine_decay_schedule(base, SPE * EPOCHS)
    yield ("SGD momentum + wd, cosine",
           dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4),
                lr_config=cosine, runner=runner),
           optax.chain(optax.add_decayed_weights(1e-4),
                       optax.sgd(opt_cosine(0.1), momentum=0.9)))
    yield ("AdamW, cosine",
           dict(optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.05), lr_config=cosine,
                runner=runner),
           optax.adamw(opt_cosine(1e-3), weight_decay=0.05))
    yield ("LARS + bn/bias exclusion, cosine",
           dict(optimizer=dict(type="LARS", lr=0.3, momentum=0.9, weight_decay=1e-6,
                               paramwise_options={"(bn|gn)(\\d+)?.(weight|bias)": dict(
                                   weight_decay=0.0, lars_exclude=True),
                                   "bias": dict(weight_decay=0.0, lars_exclude=True)}),
                lr_config=cosine, runner=runner),
           optax.lars(opt_cosine(0.3), weight_decay=1e-6, momentum=0.9,
                      weight_decay_mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p),
                      trust_ratio_mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)))
    yield ("SGD, update_interval=4 + grad_clip",
           dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4),
                optimizer_config=dict(update_interval=4, grad_clip=dict(max_norm=5.0)),
                lr_config=cosine, runner=runner),
           optax.MultiSteps(optax.chain(optax.clip_by_global_norm(5.0),
                                        optax.add_decayed_weights(1e-4),
                                        optax.sgd(opt_cosine(0.1), momentum=0.9)), 4))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    shapes = resnet50_shapes(4 if args.small else 64)
    key = jax.random.key(0)
    flat = {n: jax.random.normal(jax.random.fold_in(key, i), s) * 0.1
            for i, (n, s) in enumerate(shapes.items())}
    params = nest_names(flat)
    grads = jax.tree.map(lambda x: x * 0.01 + 0.001, params)
    n = sum(x.size for x in jax.tree.leaves(params))
    print(f"{len(shapes)} tensors, {n / 1e6:.1f}M parameters, backend {jax.default_backend()}")
    print(f"{'configuration':40s} {'step ratio':>10s} {'compile ratio':>14s}")
    for name, cfg, reference in pairs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours_tx = oss.build_optimizer(cfg, params, steps_per_epoch=SPE)
        ratios, compile_ratios = [], []
        for _ in range(args.rounds):  # interleaved rounds: the machine's noise hits both
            ours, ours_c = time_step(ours_tx, params, grads, args.steps)
            ref, ref_c = time_step(reference, params, grads, args.steps)
            ratios.append(ours / ref)
            compile_ratios.append(ours_c / ref_c)
        print(f"{name:40s} {statistics.median(ratios):10.2f} "
              f"{statistics.median(compile_ratios):14.2f}")


if __name__ == "__main__":
    main()
