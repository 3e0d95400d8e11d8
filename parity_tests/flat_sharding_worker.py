"""Recipes on the flat layout with the buffers split over 8 (fake CPU) devices, ZeRO-style,
against the flat run on one device; JSON on stdout.

Run by ``test_flat_sharding.py`` in a subprocess (the device count is fixed before jax
is imported): ``python parity_tests/flat_sharding_worker.py RECIPE ...``. Per recipe:
``oss.flat_layout(cfg, params, row_multiple=8)``, every ``Flat`` buffer (params,
gradients, slots, the accumulation buffer) split by rows (``P('x', None)``: each device
owns a contiguous range of rows), every other leaf (step counts, lr, scale) replicated;
one ``jax.jit`` step without ``out_shardings``. Reported per recipe: the largest
deviation of params and optimizer state from one device (``max |d| / max(1, |ref|)``),
the grad_norm deviation (the clip's global total), and the leaves whose returned
sharding differs from their input's.
"""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_recipes import load  # noqa: E402

import optax_selfsup as oss  # noqa: E402

from recipe_harness import gradients, initial_values, nest  # noqa: E402

MESH = Mesh(np.array(jax.devices()), ("x",))
ROWS = NamedSharding(MESH, P("x", None))
REPLICATED = NamedSharding(MESH, P())


def shardings(tree):
    """Every Flat buffer split by rows, every other leaf replicated."""
    def place(x):
        if oss.layout.is_flat(x):
            return jax.tree.map(lambda _: ROWS, x)
        return REPLICATED
    return jax.tree.map(place, tree, is_leaf=oss.layout.is_flat)


def run(name, steps, sharded):
    cfg, spe, _, inf_at = load(name)
    params = nest({k: np.asarray(v) for k, v in initial_values().items()})
    grads = gradients(steps, inf_at=[i for i in inf_at if i < steps])
    fp16 = cfg.get("fp16") is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout = oss.flat_layout(cfg, params, row_multiple=8)
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=spe, layout=layout)
    flat = layout.flatten(params)
    state = tx.init(flat)
    if sharded:
        flat = jax.device_put(flat, shardings(flat))
        s_sh = shardings(state)
        state = jax.device_put(state, s_sh)
    else:
        flat, state = jax.device_put((flat, state), jax.devices()[0])

    @jax.jit
    def step(p, s, g):
        if fp16:
            g = jax.tree.map(lambda x: x * oss.loss_scale(s), g)
        return oss.update_and_apply(tx, g, s, p)

    history, moved = [], []
    for g in grads:
        g = layout.flatten(nest({k: np.asarray(v) for k, v in g.items()}))
        g = jax.device_put(g, shardings(g) if sharded else jax.devices()[0])
        flat, state = step(flat, state, g)
        if sharded:
            for what, tree, want in (("params", flat, shardings(flat)),
                                     ("opt_state", state, s_sh)):
                for (path, x), sh in zip(jax.tree_util.tree_flatten_with_path(tree)[0],
                                         jax.tree.leaves(want)):
                    if not x.sharding.is_equivalent_to(sh, x.ndim):
                        moved.append(f"{what}{jax.tree_util.keystr(path)}")
        hp = oss.current_hparams(state)
        history.append((jax.device_get(flat), jax.device_get(state),
                        float(hp.get("grad_norm", 0.0))))
    return history, sorted(set(moved))


def deviation(a, b) -> float:
    return max((float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))
                             / np.maximum(1.0, np.abs(np.asarray(y, np.float64))), initial=0.0))
                for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))), default=0.0)


def main(names):
    out = {}
    for name in names:
        steps = 12
        one, _ = run(name, steps, False)
        eight, moved = run(name, steps, True)
        out[name] = dict(
            params=max(deviation(e[0], o[0]) for e, o in zip(eight, one)),
            opt_state=max(deviation(e[1], o[1]) for e, o in zip(eight, one)),
            grad_norm=max(abs(e[2] - o[2]) / max(1.0, abs(o[2])) for e, o in zip(eight, one)),
            moved=moved[:10], devices=len(jax.devices()))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
