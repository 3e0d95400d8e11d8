"""Every recipe on 8 (fake CPU) devices against the single-device run, as JSON on stdout.

Run by ``test_sharding.py`` in a subprocess: the device count must be fixed before
jax is imported. ``python parity_tests/sharding_worker.py [--replicated] [RECIPE ...]`` runs
the given recipes (default: all of ``test_recipes.RECIPES``).

Per recipe: the demo tree with its large tensors split over the 8 devices (the
first axis divisible by 8, ``PartitionSpec('x')`` there) and the others
replicated (``--replicated``: all replicated), the optimizer state placed like
the params (scalars and per-leaf vectors replicated), gradients placed like the
params; one ``jax.jit`` step
without ``out_shardings``. Reported: the largest deviation from the
single-device run of params, optimizer state and lr, and every leaf whose
returned sharding differs from its input's.
"""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_recipes import RECIPES, load  # noqa: E402

import optax_selfsup as oss  # noqa: E402

from recipe_harness import gradients, initial_values, nest  # noqa: E402

MESH = Mesh(np.array(jax.devices()), ("x",))
REPLICATED = NamedSharding(MESH, P())


LAYOUT = "split"  # or "replicated": every param (and slot) on all 8 devices


def param_spec(shape) -> P:
    """Split the first axis divisible by the device count; replicate small tensors."""
    if LAYOUT == "replicated":
        return P()
    for axis, size in enumerate(shape):
        if size % MESH.size == 0:
            return P(*([None] * axis + ["x"]))
    return P()


def _path(path) -> tuple:
    return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def state_shardings(state, params):
    """A state leaf sits like the param whose key path it contains (same shape);
    everything else (clocks, scalars, per-leaf lr vectors) is replicated."""
    by_path = {_path(p): (v.shape, v.sharding)
               for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}

    def place(path, leaf):
        keys = _path(path)
        for start in range(len(keys)):
            for end in range(len(keys), start, -1):
                hit = by_path.get(keys[start:end])
                if hit is not None and hit[0] == leaf.shape:
                    return hit[1]
        return REPLICATED

    return jax.tree_util.tree_map_with_path(place, state)


def run(cfg, spe, grads, fp16, sharded):
    values = initial_values()
    params = nest({k: np.asarray(v) for k, v in values.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paramwise rules for tensors the demo tree lacks
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=spe)
    if sharded:
        p_sh = jax.tree.map(lambda v: NamedSharding(MESH, param_spec(v.shape)), params)
        params = jax.device_put(params, p_sh)
        s_sh = state_shardings(jax.eval_shape(tx.init, params), params)
        state = jax.jit(tx.init, out_shardings=s_sh)(params)
    else:
        p_sh = s_sh = None
        params = jax.device_put(params, jax.devices()[0])
        state = jax.jit(tx.init)(params)

    @jax.jit
    def step(params, state, grads):
        if fp16:
            grads = jax.tree.map(lambda g: g * oss.loss_scale(state), grads)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    history, lrs, moved = [], [], []
    for g in grads:
        g = nest({k: np.asarray(v) for k, v in g.items()})
        g = jax.device_put(g, p_sh if sharded else jax.devices()[0])
        params, state = step(params, state, g)
        if sharded:
            moved += kept(params, p_sh, "params") + kept(state, s_sh, "opt_state")
        history.append((jax.device_get(params), jax.device_get(state)))
        lrs.append(np.asarray(jax.tree.leaves(oss.current_hparams(state)["lr"]), np.float64))
    return history, np.asarray(lrs), sorted(set(moved))


def kept(tree, shardings, what) -> list:
    """Leaves whose sharding after the step is not the one they came in with."""
    out = []
    for (path, leaf), want in zip(jax.tree_util.tree_flatten_with_path(tree)[0],
                                  jax.tree.leaves(shardings)):
        if not leaf.sharding.is_equivalent_to(want, leaf.ndim):
            out.append(f"{what}.{'.'.join(_path(path))}: {leaf.sharding.spec} "
                       f"instead of {want.spec}")
    return out


def deviation(ours, ref) -> float:
    """Largest |a - b| / max(1, |b|) over the leaves (exact equality of non-floats)."""
    worst = 0.0
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
        a, b = np.asarray(a), np.asarray(b)
        if not np.issubdtype(b.dtype, np.floating):
            worst = max(worst, 0.0 if np.array_equal(a, b) else np.inf)
            continue
        a, b = a.astype(np.float64), b.astype(np.float64)
        both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
        with np.errstate(invalid="ignore"):  # inf - inf where both are the same inf
            err = np.where(both_inf, 0.0, np.abs(a - b) / np.maximum(1.0, np.abs(b)))
        worst = max(worst, float(np.max(np.nan_to_num(err, nan=np.inf), initial=0.0)))
    return worst


def main(names):
    results = {}
    for name in names:
        start = time.time()
        cfg, spe, steps, inf_at = load(name)
        steps = min(steps, 40)
        grads = gradients(steps, inf_at=[i for i in inf_at if i < steps])
        fp16 = cfg.get("fp16") is not None
        single, lr1, _ = run(cfg, spe, grads, fp16, sharded=False)
        split, lr8, moved = run(cfg, spe, grads, fp16, sharded=True)
        results[name] = dict(
            iters=len(grads),
            params=max(deviation(a[0], b[0]) for a, b in zip(split, single)),
            opt_state=max(deviation(a[1], b[1]) for a, b in zip(split, single)),
            lr=float(np.max(np.abs(lr8 - lr1) / np.maximum(np.abs(lr1), 1e-30))),
            shardings_changed=moved, seconds=round(time.time() - start, 1))
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--replicated"]:
        LAYOUT, args = "replicated", args[1:]
    main(args or sorted(RECIPES))
