"""Checkpoints of a flat-layout state, and a run moved between the layouts.

A flat state saved and restored by orbax continues bit for bit; ``oss.convert_state``
moves a per-tensor state (or one continued from a torch checkpoint) to the flat layout
and back, and the run continues with torch's numbers.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_lamb import (
    CONFIG,
    CONFIG_SCALES,
    CONFIG_SHAPES,
    built_run,
    deviation,
    torch_ref_run,
    values_and_grads,
)

import optax_selfsup as oss

# accumulation (a params-shaped buffer in the state), LARS, a step count (dampening)
ACCUM = dict(
    optimizer=dict(type="LARS", lr=0.3, momentum=0.9, weight_decay=1e-4, dampening=0.1,
                   paramwise_options={"bias": dict(weight_decay=0.0, lars_exclude=True)}),
    optimizer_config=dict(update_interval=2, grad_clip=dict(max_norm=2.0)),
    lr_config=dict(policy="CosineAnnealing", min_lr=0.0, by_epoch=False),
    runner=dict(type="IterBasedRunner", max_iters=12))


def _build(cfg, params, layout):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return oss.build_optimizer(cfg, params, steps_per_epoch=6, layout=layout)


def _steps(tx, params, state, grads):
    step = jax.jit(lambda p, s, g: oss.update_and_apply(tx, g, s, p))
    for g in grads:
        params, state = step(params, state, g)
    return params, state


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"conv.weight": (4, 3, 3, 3), "conv.bias": (4,), "fc.weight": (5, 4),
              "fc.bias": (5,)}
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
    grads = [{k: jnp.asarray(rng.normal(size=s) * 0.3, jnp.float32) for k, s in shapes.items()}
             for _ in range(n)]
    return params, grads


def test_a_flat_state_saved_and_restored_continues_bit_for_bit(tmp_path):
    params, grads = _data(9)
    tx = _build(ACCUM, params, "flat")
    layout = oss.flat_layout(ACCUM, params)
    flat = layout.flatten(params)
    p5, s5 = _steps(tx, flat, tx.init(flat), [layout.flatten(g) for g in grads[:5]])
    oss.save_checkpoint(tmp_path, 5, params=p5, opt_state=s5, extra={"epoch": 1})
    template = jax.eval_shape(tx.init, layout.abstract())
    restored = oss.restore_checkpoint(tmp_path, params=layout.abstract(), opt_state=template)
    assert isinstance(restored.params, oss.Flat) and restored.extra == {"epoch": 1}
    rest = [layout.flatten(g) for g in grads[5:]]
    a, _ = _steps(tx, p5, s5, rest)
    b, _ = _steps(tx, restored.params, restored.opt_state, rest)
    for k in layout.keys:
        np.testing.assert_array_equal(a[k], b[k])
    # a flat checkpoint into a per-tensor template is refused, naming the layouts
    per = _build(ACCUM, params, None)
    with pytest.raises(oss.CheckpointMismatch, match="flat layout.*convert_state"):
        oss.restore_checkpoint(tmp_path, params=layout.abstract(), opt_state=per.init(params))


def test_a_run_moves_between_the_layouts_mid_accumulation():
    params, grads = _data(11, seed=3)
    per, flat_tx = _build(ACCUM, params, None), _build(ACCUM, params, "flat")
    ref, _ = _steps(per, params, per.init(params), grads)
    p, s = _steps(per, params, per.init(params), grads[:5])  # in the middle of a group
    s = oss.convert_state(s, flat_tx.init(params))
    assert oss.flat_layout_of(s) == oss.flat_layout(ACCUM, params)
    p, s = _steps(flat_tx, p, s, grads[5:8])
    s = oss.convert_state(s, per.init(params))
    assert jax.tree.structure(s) == jax.tree.structure(per.init(params))
    p, s = _steps(per, p, s, grads[8:])
    for k in params:
        np.testing.assert_allclose(p[k], ref[k], rtol=2e-6, atol=2e-7)
    moved = max(float(jnp.max(jnp.abs(ref[k] - params[k]))) for k in params)
    assert moved > 1e-3


def test_a_torch_checkpoint_continues_on_the_flat_layout():
    """Lamb with a frozen head (torch's group count advances while it is frozen), clip,
    paramwise options: torch's checkpoint at iteration 6, continued flat."""
    values, grads = values_and_grads(CONFIG_SHAPES, CONFIG_SCALES, seed=5, dtype=np.float32)
    n = 6
    ref, ckpt, _ = torch_ref_run(CONFIG, values, grads, np.float32, save_at=n)
    template = {k: jnp.zeros(v.shape, jnp.float32) for k, v in values.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = oss.from_torch_checkpoint(ckpt, CONFIG, template, steps_per_epoch=len(grads))
        flat_tx = oss.build_optimizer(CONFIG, template, steps_per_epoch=len(grads),
                                      layout="flat")
        direct = oss.from_torch_checkpoint(ckpt, CONFIG, template, steps_per_epoch=len(grads),
                                           layout="flat")
    state = oss.convert_state(resumed.opt_state, flat_tx.init(template))
    assert jax.tree.structure(direct.opt_state) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(direct.opt_state), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)
    ours, _ = built_run(CONFIG, values, grads[n:], np.float32, resumed.params, state,
                        layout="flat")
    assert deviation(ours, ref[n:]) <= 1e-5
    assert optax.tree_utils.tree_max(jax.tree.map(jnp.abs, resumed.params)) > 0


def test_the_checkpoint_record_of_a_bare_flat_optimizer():
    """save_checkpoint's record: the slot names and the iteration of a flat optimizer
    standing alone (no clock around it) as of a per-tensor one."""
    from optax_selfsup.checkpoint.record import make_record

    params = {"a": jnp.ones(3), "b": jnp.ones((2, 2))}
    records = []
    for layout in (None, oss.FlatLayout(params)):
        tx = oss.sgd(lr=0.1, momentum=0.9, layout=layout)
        state = tx.init(params)
        for _ in range(2):
            _, state = tx.update(params, state, params)
        records.append(make_record(state))
    assert records[1] == records[0]
    assert records[1]["slots"] == ["momentum_buffer"] and records[1]["iteration"] == 2
