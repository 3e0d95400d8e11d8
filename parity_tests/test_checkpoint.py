"""Checkpoint and resume: bit-identical continuation, refusal of foreign states, round trips.

Every run trains the demo tree (``optax_selfsup.demo.DEMO_MODEL``) on random gradients.
A resumed run rebuilds the optimizer from the config, restores params and state into
templates (``tx.init(params)``) and must equal the uninterrupted run bit for bit, at
every later iteration: in warmup, in a frozen period, in the middle of an accumulation
group, around fp16-skipped updates.
"""

import functools
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import serialization

import optax_selfsup as oss
from optax_selfsup.checkpoint import (
    CheckpointMismatch,
    check_compatible,
    latest_step,
    restore_checkpoint,
    save_checkpoint,
    state_from_raw,
)
from optax_selfsup.demo import DEMO_MODEL

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
SIMCLR = "selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"
BYOL = "selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py"
MAE = "selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py"
FP16 = "misc/adamw_fp16-dynamic_accum4.py"

# name: (config, overrides, steps_per_epoch, iterations, resume points, inf gradient steps)
# SimCLR: warmup until it 20, prototypes frozen until it 12; BYOL: updates at 15, 31, 47;
# MAE: warmup until it 40; fp16: updates every 4, non-finite gradients at 5, 6 and 22.
RUNS = {
    "simclr": (SIMCLR, ["optimizer_config.frozen_layers_cfg.prototypes=12"], 2, 30,
               (5, 17, 25), ()),
    "byol_accum16": (BYOL, [], 2, 40, (7, 16, 20, 33), ()),
    "mae": (MAE, [], 1, 30, (3, 12, 29), ()),
    "fp16": (FP16, [], 4, 30, (5, 10, 22, 27), (5, 6, 22)),
}


def config(name, overrides=()):
    cfg = oss.load_config(os.path.join(ROOT, name))
    return oss.merge_options(cfg, list(overrides)) if overrides else cfg


def initial_params(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    flat = {k: (rng.normal(size=s) * 0.5).astype(dtype) for k, s in DEMO_MODEL.items()}
    flat["neck.zero_init.weight"][...] = 0
    return oss.nest_names({k: jnp.asarray(v) for k, v in flat.items()})


def gradients(steps, inf_at=(), seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for it in range(steps):
        flat = {k: (rng.normal(size=s) * 0.1).astype(np.float32) for k, s in DEMO_MODEL.items()}
        if it in inf_at:
            flat["neck.mlp.0.weight"][0, 0] = np.inf
        out.append(oss.nest_names({k: jnp.asarray(v) for k, v in flat.items()}))
    return out


def build(cfg, params, spe):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paramwise rules for tensors the demo tree lacks
        return oss.build_optimizer(cfg, params, steps_per_epoch=spe)


def make_step(tx, fp16):
    @jax.jit
    def step(params, state, grads):
        if fp16:  # the loss (hence the gradient) is multiplied by the scale in force
            grads = jax.tree.map(lambda g: g * oss.loss_scale(state), grads)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def same_bits(a, b) -> bool:
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    if ta != tb:
        return False
    return all(np.asarray(x).dtype == np.asarray(y).dtype
               and np.asarray(x).tobytes() == np.asarray(y).tobytes() for x, y in zip(la, lb))


class Run:
    """An uninterrupted run: params and optimizer state before every iteration."""

    def __init__(self, name):
        cfg_name, overrides, spe, steps, points, inf_at = RUNS[name]
        self.cfg = config(cfg_name, overrides)
        self.spe, self.steps, self.points = spe, steps, points
        self.fp16 = self.cfg.get("fp16") is not None
        self.grads = gradients(steps, inf_at)
        params = initial_params()
        tx = build(self.cfg, params, spe)
        state = tx.init(params)
        self.step = step = make_step(tx, self.fp16)
        self.history = [(params, state)]
        for g in self.grads:
            params, state = step(params, state, g)
            self.history.append((params, state))
        self.updated = [bool(oss.has_updated(s)) for _, s in self.history[1:]]

    def fresh(self, compile_again=False):
        """What a restarted process has: the optimizer rebuilt from the config, templates
        (other values: the restore must overwrite them) and a step function. Compiling a
        new step costs 10-30 s on 2 busy cores, so only ``compile_again`` does."""
        params = initial_params(seed=7)
        tx = build(self.cfg, params, self.spe)
        return tx, params, tx.init(params), (make_step(tx, self.fp16) if compile_again
                                             else self.step)

    def continue_from(self, it, params, state, step):
        for k in range(it, self.steps):
            params, state = step(params, state, self.grads[k])
            ref_p, ref_s = self.history[k + 1]
            assert same_bits(params, ref_p), f"params differ at iteration {k} after resume"
            assert same_bits(state, ref_s), f"state differs at iteration {k} after resume"
        return params, state


@functools.cache
def run(name):
    return Run(name)


def test_runs_cover_the_interesting_resume_points():
    simclr, byol, fp16 = run("simclr"), run("byol_accum16"), run("fp16")
    assert np.nonzero(byol.updated)[0].tolist() == [15, 31]
    assert 7 % 16 and 20 % 16 and 33 % 16  # resumed inside an accumulation group
    assert not all(fp16.updated[3::4])  # an fp16 update was skipped
    p0, p5 = simclr.history[0][0], simclr.history[5][0]
    assert np.array_equal(p0["prototypes"]["weight"], p5["prototypes"]["weight"])  # frozen
    lr = oss.current_hparams(simclr.history[5][1])["lr"]["neck"]["mlp"]["0"]["weight"]
    assert float(lr) < 0.3 * 5 / 20 * 1.01  # warming up


@pytest.mark.parametrize("name", sorted(RUNS))
def test_orbax_resume_is_bit_identical(name, tmp_path):
    r = run(name)
    for it in r.points:
        params, state = r.history[it]
        save_checkpoint(tmp_path, it, params=params, opt_state=state, extra={"epoch": it // r.spe})
    assert latest_step(tmp_path) == max(r.points)
    tx, params_t, state_t, step = r.fresh(compile_again=name == "fp16")
    for it in r.points:
        restored = restore_checkpoint(tmp_path, params=params_t, opt_state=state_t, step=it)
        assert restored.step == it and restored.extra == {"epoch": it // r.spe}
        assert type(restored.opt_state) is type(state_t)
        assert int(oss.iteration(restored.opt_state)) == it
        r.continue_from(it, restored.params, restored.opt_state, step)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_resume_at_every_iteration_through_flax_bytes(name):
    r = run(name)
    tx, params_t, state_t, step = r.fresh()
    for it in range(r.steps + 1):
        params, state = r.history[it]
        blob = serialization.to_bytes({"params": params, "opt_state": state})
        back = serialization.from_bytes({"params": params_t, "opt_state": state_t}, blob)
        assert same_bits(back["opt_state"], state) and same_bits(back["params"], params)
        # continue a few iterations (the orbax test runs to the end from its points)
        end = min(r.steps, it + 5)
        p, s = back["params"], back["opt_state"]
        for k in range(it, end):
            p, s = step(p, s, r.grads[k])
        assert same_bits((p, s), r.history[end]), f"resumed at {it}, differs at {end}"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_orbax_without_a_target_gives_nested_containers_brought_back_by_state_from_raw(
        name, tmp_path):
    r = run(name)
    params, state = r.history[r.points[0]]
    save_checkpoint(tmp_path, 0, params=params, opt_state=state)
    with ocp.CheckpointManager(str(tmp_path)) as mngr:
        raw = mngr.restore(0, args=ocp.args.Composite(
            opt_state=ocp.args.StandardRestore()))["opt_state"]
    assert isinstance(raw, dict) and set(raw) == {"iteration", "inner"}
    template = r.fresh()[2]
    assert same_bits(state_from_raw(template, raw), state)
    # flax's own from_state_dict takes it as is when no optax.chain tuple is inside
    # (orbax writes tuples as lists, flax expects {'0': ..., '1': ...})
    has_chain = r.cfg["optimizer_config"].get("grad_clip") is not None
    if not has_chain:
        assert same_bits(serialization.from_state_dict(template, raw), state)
    # flax's state dict form goes back the same way
    assert same_bits(state_from_raw(template, serialization.to_state_dict(state)), state)


# ----------------------------------------------------------------------------- refusals


def refusal(tmp_path, saved_run, template_cfg, template_params=None, spe=2):
    """Save ``saved_run``'s state, restore into ``template_cfg``'s: the error text."""
    params, state = run(saved_run).history[3]
    save_checkpoint(tmp_path, 3, params=params, opt_state=state)
    template_params = initial_params() if template_params is None else template_params
    template = build(template_cfg, template_params, spe).init(template_params)
    with pytest.raises(CheckpointMismatch) as err:
        restore_checkpoint(tmp_path, params=template_params, opt_state=template)
    return str(err.value)


def test_a_checkpoint_with_accumulation_is_refused_without(tmp_path):
    msg = refusal(tmp_path, "byol_accum16", config(SIMCLR))
    assert ("the checkpoint's optimizer state has an accumulation buffer (optimizer_config"
            ".update_interval) (AccumulateState); this optimizer state has none") in msg


def test_a_checkpoint_without_accumulation_is_refused_with(tmp_path):
    msg = refusal(tmp_path, "simclr", config(BYOL))
    assert "this optimizer state has an accumulation buffer" in msg  # (AccumulateState)
    assert "the checkpoint's has none" in msg
    assert "frozen-layer bookkeeping" in msg  # the SimCLR run also froze prototypes


def test_another_optimizer_is_refused_naming_the_slots(tmp_path):
    cfg = config(SIMCLR, RUNS["simclr"][1])
    cfg["optimizer"] = dict(type="AdamW", lr=1e-3)
    msg = refusal(tmp_path, "simclr", cfg)
    assert "the checkpoint's optimizer keeps momentum_buffer slots per parameter; " \
           "this one keeps exp_avg, exp_avg_sq" in msg
    # first differing paths: AdamW keeps a step count per parameter, LARS none
    assert "inner.inner.step.backbone.bn1.bias" in msg
    assert "inner.inner.slots.backbone.bn1.bias.momentum_buffer" in msg


def test_fp16_state_is_refused_by_the_same_optimizer_without_fp16(tmp_path):
    cfg = config(FP16)
    del cfg["fp16"]
    msg = refusal(tmp_path, "fp16", cfg, spe=4)
    assert "the checkpoint's optimizer state has a loss scale (fp16)" in msg


def test_another_parameter_tree_is_refused_naming_paths_shapes_and_dtypes(tmp_path):
    params = initial_params()
    params["backbone"]["conv1"]["weight"] = jnp.zeros((8, 3, 3, 5))
    params["neck"]["extra"] = {"weight": jnp.zeros((2,))}
    msg = refusal(tmp_path, "simclr", config(SIMCLR, RUNS["simclr"][1]), params)
    assert "1 path(s) of the params template are not in the checkpoint: neck.extra.weight" in msg
    assert ("backbone.conv1.weight: checkpoint float32[8,3,3,3], the params template "
            "float32[8,3,3,5]") in msg
    half = jax.tree.map(lambda x: x.astype(jnp.float16), initial_params())
    msg = refusal(tmp_path / "half", "simclr", config(SIMCLR, RUNS["simclr"][1]), half)
    assert "checkpoint float32[8,3,3,3], the params template float16[8,3,3,3]" in msg


def test_an_existing_step_is_replaced_only_when_asked(tmp_path):
    params, state = run("mae").history[2]
    save_checkpoint(tmp_path, 2, params=params, opt_state=state, extra={"run": 1})
    with pytest.raises(FileExistsError, match="already holds step 2; pass overwrite=True"):
        save_checkpoint(tmp_path, 2, params=params, opt_state=state)
    save_checkpoint(tmp_path, 2, params=params, opt_state=state, extra={"run": 2},
                    overwrite=True)
    assert restore_checkpoint(tmp_path, params=params, opt_state=state).extra == {"run": 2}
    with pytest.raises(FileNotFoundError, match="has no step 5; saved steps: \\[2\\]"):
        restore_checkpoint(tmp_path, params=params, opt_state=state, step=5)


def test_check_compatible_accepts_its_own_kind_and_reads_raw_trees():
    r = run("fp16")
    state = r.history[-1][1]
    check_compatible(r.fresh()[2], state)
    check_compatible(r.fresh()[2], serialization.to_state_dict(state))
    with pytest.raises(CheckpointMismatch, match="AccumulateState"):
        check_compatible(run("mae").history[0][1], state)
