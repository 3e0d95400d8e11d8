"""The flat layout (optax_selfsup/layout): buffers, round trips, per-tensor reductions.

Per-tensor norms are checked against torch (``torch.linalg.vector_norm`` per tensor and
``torch.nn.utils.clip_grad_norm_``'s total) and NumPy in float64; the flat gradient of a
loss that reads its tensors from the flat buffer against ``jax.grad`` of the per-tensor
loss (bit for bit: the same arithmetic, only the container differs).
"""

import math

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from optax_selfsup.errors import ConfigError
from optax_selfsup.layout import Flat, FlatLayout, is_flat

INF = float("inf")


def random_tree(rng, shapes, dtype=np.float64):
    return {f"t{i}": {"w": rng.normal(size=s).astype(dtype)} for i, s in enumerate(shapes)}


SHAPES = [(3, 5), (), (0, 4), (128,), (129,), (2, 3, 7, 7), (1,), (64,), (256, 3)]


def test_round_trip_order_padding_and_metadata():
    rng = np.random.default_rng(0)
    params = random_tree(rng, SHAPES, np.float32)
    groups = {f"t{i}": {"w": [2, 0, 1][i % 3]} for i in range(len(SHAPES))}
    layout = FlatLayout(params, groups=groups, width=128)
    # group 0 first, then 1, then 2; leaf order within a group
    assert list(layout.groups) == sorted(layout.groups)
    assert [n for n, g in zip(layout.names, layout.groups) if g == 0] == \
        [f"t{i}.w" for i in range(len(SHAPES)) if i % 3 == 1]
    flat = layout.flatten(params)
    buf = np.asarray(flat["float32"])
    assert buf.shape == (layout.buffer_rows["float32"], 128)
    for i, name in enumerate(layout.names):
        start, rows, size = layout.row_start[i], layout.rows[i], layout.sizes[i]
        assert rows == math.ceil(size / 128)
        block = buf[start:start + rows].reshape(-1)
        leaf = params[name.split(".")[0]]["w"]
        np.testing.assert_array_equal(block[:size], np.ravel(leaf))
        np.testing.assert_array_equal(block[size:], 0)  # padding is 0
        assert (layout.segment_ids["float32"][start:start + rows] == i).all()
    back = layout.unflatten(flat)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), back, params)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    assert layout.padding == buf.size - sum(np.size(x) for x in jax.tree.leaves(params))


def test_one_buffer_per_dtype_in_first_seen_order():
    params = {"a": np.ones((3,), np.float32), "b": np.ones((2, 2), jnp.bfloat16),
              "c": np.ones((5,), np.float32)}
    layout = FlatLayout(params)
    assert layout.keys == ("float32", "bfloat16")
    assert layout.names == ("a", "c", "b")
    flat = layout.flatten(params)
    assert flat["bfloat16"].dtype == jnp.bfloat16 and flat["float32"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(layout.norms(flat)), [math.sqrt(3), math.sqrt(5), 2],
                               rtol=1e-7)


@pytest.mark.parametrize("method", ["halves", "sum", "dot"])
@pytest.mark.parametrize("ord", [2.0, 1.0, INF, 3.0, 0.5])
def test_norms_match_torch_in_float64(method, ord):
    rng = np.random.default_rng(1)
    params = random_tree(rng, SHAPES)
    with jax.enable_x64(True):
        layout = FlatLayout(params, width=32 if method == "halves" else 48, method=method)
        flat = layout.flatten(params)
        ours = np.asarray(jax.jit(lambda f: layout.norms(f, ord))(flat))
        total = float(layout.total_norm(flat, ord))
    tensors = [torch.tensor(params[n.split(".")[0]]["w"]) for n in layout.names]
    ref = [float(torch.linalg.vector_norm(t, ord)) if t.numel() else 0.0 for t in tensors]
    np.testing.assert_allclose(ours, ref, rtol=1e-13, atol=0)
    # torch refuses the inf norm of an empty tensor; an empty tensor adds 0 to any total
    grads = [t.clone().requires_grad_() for t in tensors if t.numel()]
    for p, t in zip(grads, [t for t in tensors if t.numel()]):
        p.grad = t.clone()
    ref_total = float(torch.nn.utils.clip_grad_norm_(grads, 1e30, norm_type=ord))
    assert total == pytest.approx(ref_total, rel=1e-13)


def test_sum_squares_max_abs_sums_against_numpy():
    rng = np.random.default_rng(2)
    params = random_tree(rng, SHAPES)
    with jax.enable_x64(True):
        layout = FlatLayout(params)
        flat = layout.flatten(params)
        leaves = [params[n.split(".")[0]]["w"] for n in layout.names]
        np.testing.assert_allclose(layout.sum_squares(flat), [np.sum(x * x) for x in leaves],
                                   rtol=1e-13)
        np.testing.assert_allclose(layout.sums(flat), [np.sum(x) for x in leaves],
                                   rtol=1e-12, atol=1e-13)
        np.testing.assert_array_equal(layout.max_abs(flat),
                                      [np.max(np.abs(x), initial=0.0) for x in leaves])


@pytest.mark.parametrize("method", ["sum", "halves", "dot"])
def test_padding_never_enters_a_norm(method):
    rng = np.random.default_rng(3)
    params = random_tree(rng, SHAPES, np.float32)
    layout = FlatLayout(params, row_multiple=8, method=method)
    flat = layout.flatten(params)
    clean = np.asarray(layout.norms(flat))
    buf = np.asarray(flat["float32"]).copy()
    cols = np.arange(128)[None, :]
    pad = cols >= layout.valid["float32"][:, None]
    assert pad.any() and (buf[pad] == 0).all()
    buf[pad] = np.nan  # garbage in every padding element, trailing rows included
    dirty = flat.replace(float32=jnp.asarray(buf))
    for ord in (2.0, 1.0, INF):
        np.testing.assert_array_equal(np.asarray(layout.norms(dirty, ord)),
                                      np.asarray(layout.norms(flat, ord)))
    np.testing.assert_array_equal(np.asarray(layout.norms(dirty)), clean)
    back = layout.unflatten(dirty)  # the padding is not part of any tensor
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), back, params)


def test_per_row_and_per_tensor_vectors():
    params = {"a": np.ones((300,), np.float32), "b": np.ones((2,), np.float32),
              "c": np.ones((0,), np.float32)}
    layout = FlatLayout(params, groups={"a": 1, "b": 0, "c": 0}, row_multiple=4)
    assert layout.names == ("b", "c", "a")
    vec = layout.per_tensor({"a": 3.0, "b": 1.0, "c": 2.0})
    np.testing.assert_array_equal(vec, [1.0, 2.0, 3.0])
    rows = np.asarray(layout.per_row(vec, "float32"))[:, 0]
    np.testing.assert_array_equal(rows, [1.0, 3.0, 3.0, 3.0])  # b: 1 row, c: none, a: 3
    assert layout.to_tree(vec) == {"a": 3.0, "b": 1.0, "c": 2.0}
    np.testing.assert_array_equal(layout.per_tensor(0.5), [0.5] * 3)


def test_flat_gradient_equals_the_per_tensor_gradient_bit_for_bit():
    rng = np.random.default_rng(4)
    params = random_tree(rng, SHAPES, np.float32)
    layout = FlatLayout(params)

    def loss(tree):
        out = jnp.float32(0)
        for i, leaf in enumerate(jax.tree.leaves(tree)):
            out = out + jnp.sum(jnp.sin(leaf) * (i + 1)) + jnp.sum(leaf ** 3)
        return out

    per_tensor = jax.jit(jax.grad(loss))(params)
    flat_grad = jax.jit(jax.grad(lambda f: loss(layout.unflatten(f))))(layout.flatten(params))
    assert is_flat(flat_grad) and flat_grad.layout == layout
    np.testing.assert_array_equal(np.asarray(flat_grad["float32"]),
                                  np.asarray(layout.flatten(per_tensor)["float32"]))


def test_flat_is_a_pytree_for_jit_optax_and_device_put():
    params = {"w": np.ones((4, 40), np.float32), "b": np.zeros((3,), np.float32)}
    layout = FlatLayout(params)
    again = FlatLayout({"w": jnp.zeros((4, 40)), "b": jnp.zeros(3)})
    flat = layout.flatten(params)
    assert jax.tree.structure(flat) == jax.tree.structure(again.flatten(params))
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(flat)[0]]
    assert paths == ["['float32']"]
    tx = optax.sgd(0.1, momentum=0.9)
    state = tx.init(flat)
    grads = layout.flatten({"w": np.full((4, 40), 2.0, np.float32), "b": np.ones(3, np.float32)})
    updates, state = jax.jit(tx.update)(grads, state, flat)
    new = optax.apply_updates(flat, updates)
    assert isinstance(new, Flat)
    np.testing.assert_allclose(np.asarray(layout.unflatten(new)["w"]), 0.8)
    assert float(jnp.sum(new["float32"])) == pytest.approx(160 * 0.8 + 3 * -0.1)
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    placed = jax.device_put(new, sharding)
    assert placed.layout == layout and placed["float32"].sharding == sharding
    assert jax.eval_shape(lambda f: f, layout.abstract()).layout == layout


def test_orbax_round_trip(tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    params = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(2, np.float32)}
    layout = FlatLayout(params)
    flat = layout.flatten(params)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "flat", flat)
    with ocp.StandardCheckpointer() as ckpt:
        restored = ckpt.restore(tmp_path / "flat", layout.abstract())
    assert isinstance(restored, Flat) and restored.layout == layout
    np.testing.assert_array_equal(np.asarray(restored["float32"]), np.asarray(flat["float32"]))
    # converting: a per-tensor checkpoint of the same params
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "tree", layout.unflatten(flat))
    with ocp.StandardCheckpointer() as ckpt:
        tree = ckpt.restore(tmp_path / "tree")
    np.testing.assert_array_equal(np.asarray(layout.flatten(tree)["float32"]),
                                  np.asarray(flat["float32"]))


def test_flatten_all_and_unflatten_all_convert_optimizer_states():
    params = {"w": np.ones((3, 4), np.float32), "b": np.ones((2,), np.float32)}
    layout = FlatLayout(params)
    state = optax.sgd(0.1, momentum=0.9).init(params)
    flat_state = layout.flatten_all(state)
    assert is_flat(flat_state[0].trace)
    back = layout.unflatten_all(flat_state)
    assert jax.tree.structure(back) == jax.tree.structure(state)


@pytest.mark.parametrize("kwargs, words", [
    (dict(width=100, method="halves"), ["width=100", "power of two"]),
    (dict(width=0), ["width=0"]),
    (dict(row_multiple=0), ["row_multiple=0"]),
    (dict(method="cumsum"), ["method='cumsum'", "halves"]),
    (dict(groups={"a": 0}), ["groups", "2 leaves"]),
])
def test_bad_arguments_are_refused_naming_them(kwargs, words):
    with pytest.raises(ConfigError) as err:
        FlatLayout({"a": np.ones(3), "b": np.ones(2)}, **kwargs)
    for word in words:
        assert word in str(err.value)


def test_flatten_refuses_a_tree_of_other_shapes():
    layout = FlatLayout({"a": np.ones(3), "b": np.ones(2)})
    with pytest.raises(ValueError, match="'b' has shape"):
        layout.flatten({"a": np.ones(3), "b": np.ones(4)})
    with pytest.raises(ValueError, match="another layout"):
        layout.unflatten(FlatLayout({"a": np.ones(3)}).flatten({"a": np.ones(3)}))


@settings(max_examples=12, deadline=None)
@given(shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9),
                       min_size=1, max_size=6),
       width=st.sampled_from([1, 2, 8, 32]), seed=st.integers(0, 2**16),
       row_multiple=st.integers(1, 5))
def test_property_round_trip_and_norms(shapes, width, seed, row_multiple):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in shapes]
    groups = list(rng.integers(0, 3, len(shapes)))
    with jax.enable_x64(True):
        layout = FlatLayout(params, groups=groups, width=width, row_multiple=row_multiple)
        flat = layout.flatten(params)
        assert flat["float64"].shape[0] % row_multiple == 0
        for a, b in zip(layout.unflatten(flat), params):
            np.testing.assert_array_equal(np.asarray(a), b)
        norms = np.asarray(layout.norms(flat))
    ref = [np.sqrt(np.sum(params[i] ** 2)) for i in layout.order]
    np.testing.assert_allclose(norms, ref, rtol=1e-13)
    # groups are contiguous runs, in increasing id order
    assert list(layout.groups) == sorted(layout.groups)


def test_training_loop_pattern_with_linen_and_nnx_models():
    """The loss reads its tensors from the flat buffer; the flat gradient equals the
    per-tensor gradient bit for bit (Linen with batch stats, NNX with BatchNorm)."""
    import flax.linen as lnn
    from flax import nnx

    class Linen(lnn.Module):
        @lnn.compact
        def __call__(self, x):
            x = lnn.Dense(5)(x)
            x = lnn.BatchNorm(use_running_average=False)(x)
            return lnn.Dense(1)(lnn.relu(x))

    x = jnp.asarray(np.random.default_rng(5).normal(size=(4, 3)), jnp.float32)
    model = Linen()
    variables = model.init(jax.random.PRNGKey(0), x)
    params, stats = variables["params"], {"batch_stats": variables["batch_stats"]}
    layout = FlatLayout(params)

    def linen_loss(params, stats):
        y, upd = model.apply({"params": params, **stats}, x, mutable=["batch_stats"])
        return jnp.mean(y ** 2), upd

    ref = jax.jit(jax.grad(linen_loss, has_aux=True))(params, stats)[0]
    flat_loss = lambda f, stats: linen_loss(layout.unflatten(f), stats)
    got, upd = jax.jit(jax.grad(flat_loss, has_aux=True))(layout.flatten(params), stats)
    np.testing.assert_array_equal(np.asarray(got["float32"]),
                                  np.asarray(layout.flatten(ref)["float32"]))
    assert "batch_stats" in upd

    class NNX(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(3, 5, rngs=rngs)
            self.bn = nnx.BatchNorm(5, rngs=rngs)
            self.l2 = nnx.Linear(5, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.relu(self.bn(self.l1(x))))

    graphdef, params, rest = nnx.split(NNX(nnx.Rngs(0)), nnx.Param, ...)
    layout = FlatLayout(params)
    assert "l1.kernel" in layout.names  # names without NNX's '.value'

    def nnx_loss(params, rest):
        m = nnx.merge(graphdef, params, rest, copy=True)
        return jnp.mean(m(x) ** 2), nnx.state(m, nnx.BatchStat)

    ref = jax.jit(jax.grad(nnx_loss, has_aux=True))(params, rest)[0]
    flat_loss = lambda f, rest: nnx_loss(layout.unflatten(f), rest)
    got, _ = jax.jit(jax.grad(flat_loss, has_aux=True))(layout.flatten(params), rest)
    np.testing.assert_array_equal(np.asarray(got["float32"]),
                                  np.asarray(layout.flatten(ref)["float32"]))


SHARDED = r"""
import json, os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from optax_selfsup.layout import FlatLayout
rng = np.random.default_rng(0)
shapes = [(64, 3, 3, 3), (64,), (64,), (128, 64, 3, 3), (128,), (10, 128), (10,), (), (7, 5)]
params = {f"t{i}": rng.normal(size=s).astype(np.float32) for i, s in enumerate(shapes)}
grads = {k: (0.01 * rng.normal(size=np.shape(v))).astype(np.float32) for k, v in params.items()}
layout = FlatLayout(params, row_multiple=8)

def step(p, m, g):  # LARS + clip on the flat buffers: per-tensor norms, one elementwise pass
    pn, gn = layout.norms(p), layout.norms(g)
    coef = jnp.minimum(2.0 / (layout.total_norm(g) + 1e-6), 1.0)
    trust = jnp.where((pn > 0) & (gn > 0), 1e-3 * pn / (gn * coef + 1e-6 * pn + 1e-8), 1.0)
    scale = layout.per_row(0.1 * trust, "float32")
    new_m = 0.9 * m["float32"] + (g["float32"] * coef + 1e-6 * p["float32"]) * scale
    return p.replace(float32=p["float32"] - new_m), m.replace(float32=new_m), pn, gn

p, g = layout.flatten(params), layout.flatten(grads)
m = layout.zeros()
one = jax.jit(step)(p, m, g)
mesh = Mesh(np.array(jax.devices()), ("x",))
rows = NamedSharding(mesh, P("x", None))
put = lambda f: jax.device_put(f, rows)
eight = jax.jit(step)(put(p), put(m), put(g))
rel = lambda a, b: np.abs(a - b) / np.maximum(1, np.abs(b))
dev = max(float(np.max(rel(np.asarray(a), np.asarray(b))))
          for a, b in zip(jax.tree.leaves(eight), jax.tree.leaves(one)))
print(json.dumps(dict(dev=dev, devices=len(jax.devices()),
                      sharded=[str(x.sharding.spec) for x in jax.tree.leaves(eight[:2])])))
"""


def test_flat_buffers_split_across_8_devices_equal_one_device():
    """Rows split ZeRO-style over 8 (fake CPU) devices: per-tensor norms, the clip total
    and the update equal the one-device run within float32 rounding; the outputs stay
    split."""
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 8
    assert out["dev"] <= 6e-7, out
    assert out["sharded"] == ["P('x', None)"] * 2, out

