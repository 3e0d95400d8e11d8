"""Schedules never leave the real line: refused when built, held past the run's end.

Inside the run, a config whose lr or momentum would be NaN, infinite or negative
(for some base value >= 0) is refused when the schedule is built, naming the key
and the iteration. Past the run's end every policy holds the value of iteration
``max_iters - 1``. Configs that stay valid are compared against torch_ref.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import optax_selfsup as oss

from schedule_harness import max_rel_dev, optax_values, reference

ITER = dict(runner_type="IterBasedRunner", max_iters=4)
RUN = dict(steps_per_epoch=10, max_epochs=5)


def lr_values(cfg, its, base=0.1, run=ITER):
    return np.asarray(oss.lr_schedule(cfg, base, **run)(jnp.asarray(its)), np.float64)


# (id, config, run, fragments of the message: key, value, iteration)
REFUSED = [
    ("inv gamma -0.5", dict(policy="Inv", gamma=-0.5, by_epoch=False), ITER,
     ["lr_config.gamma=-0.5", "1 + gamma*progress", "iteration 2", "> -0.333"]),
    ("inv gamma -1 by epoch", dict(policy="Inv", gamma=-1.0), RUN,
     ["lr_config.gamma=-1.0", "iteration 10 (epoch 1)"]),
    ("inv power overflows", dict(policy="Inv", gamma=10.0, power=-40.0, by_epoch=False), ITER,
     ["lr_config.power=-40.0", "iteration 1", "2**100"]),
    ("exp gamma negative", dict(policy="Exp", gamma=-0.5), RUN,
     ["lr_config.gamma=-0.5", "> 0", "iteration 10 (epoch 1)"]),
    ("exp gamma 0", dict(policy="Exp", gamma=0.0, by_epoch=False), ITER,
     ["lr_config.gamma=0.0", "> 0", "iteration 1"]),
    ("exp gamma overflows", dict(policy="Exp", gamma=1e20, by_epoch=False), ITER,
     ["lr_config.gamma=1e+20", "2**100", "iteration 2"]),
    ("step gamma negative", dict(policy="Step", step=2, gamma=-0.1), RUN,
     ["lr_config.gamma=-0.1", "> 0", "iteration 20 (epoch 2)"]),
    ("step momentum gamma 0", dict(policy="Step", step=[3], gamma=0), RUN,
     ["momentum_config.gamma=0", "> 0", "iteration 30 (epoch 3)"]),
    ("poly negative min_lr", dict(policy="Poly", min_lr=-0.1, by_epoch=False), ITER,
     ["lr_config.min_lr=-0.1", ">= 0", "iteration 3", "below 0.3"]),
    ("poly negative power with min_lr", dict(policy="Poly", power=-1.0, min_lr=0.01), RUN,
     ["lr_config.power=-1.0", "min_lr=0.01", "iteration 40 (epoch 4)"]),
    ("cosine negative min_lr", dict(policy="CosineAnnealing", min_lr=-1e-3), RUN,
     ["lr_config.min_lr=-0.001", ">= 0", "iteration 40 (epoch 4)"]),
    ("cosine negative ratio", dict(policy="CosineAnnealing", min_lr_ratio=-0.1), RUN,
     ["lr_config.min_lr_ratio=-0.1", ">= 0"]),
    ("linear negative min_lr", dict(policy="LinearAnnealing", min_lr=-1e-3, by_epoch=False),
     ITER, ["lr_config.min_lr=-0.001", ">= 0", "iteration 3"]),
    ("flat negative min_lr", dict(policy="FlatCosineAnnealing", min_lr=-1e-3), RUN,
     ["lr_config.min_lr=-0.001", ">= 0"]),
    ("stepfix negative min_lr", dict(policy="StepFixCosineAnnealing", min_lr=-1e-3), RUN,
     ["lr_config.min_lr=-0.001", ">= 0"]),
    ("restart negative weight", dict(policy="CosineRestart", periods=[2, 3],
                                     restart_weights=[1, -0.5], min_lr=0.0), RUN,
     ["lr_config.restart_weights[1]=-0.5", ">= 0", "iteration 20 (epoch 2)"]),
    ("restart weight > 1 with min_lr", dict(policy="CosineRestart", periods=[2, 3],
                                            restart_weights=[1, 2.0], min_lr=0.01), RUN,
     ["lr_config.restart_weights[1]=2.0", "min_lr=0.01", "iteration 20 (epoch 2)",
      "below 0.005"]),
    ("restart weight > 1 with ratio > 1", dict(policy="CosineRestart", periods=[5],
                                               restart_weights=[3.0], min_lr_ratio=2.0), RUN,
     ["lr_config.restart_weights[0]=3.0", "min_lr_ratio=2.0", "iteration 0"]),
    ("cyclic negative ratio", dict(policy="Cyclic", target_ratio=(10, -1e-4)), ITER,
     ["lr_config.target_ratio=(10, -0.0001)", ">= 0"]),
    ("onecycle negative max_lr", dict(policy="OneCycle", max_lr=-0.5), ITER,
     ["lr_config.max_lr=-0.5", ">= 0"]),
    ("onecycle negative per-group max_lr", dict(policy="OneCycle", max_lr=[0.5, -0.5]), ITER,
     ["lr_config.max_lr=[0.5, -0.5]", ">= 0"]),
    ("onecycle tiny final_div_factor", dict(policy="OneCycle", max_lr=0.5,
                                            final_div_factor=1e-40), ITER,
     ["lr_config.final_div_factor=1e-40", "2**100"]),
    ("onecycle infinite div_factor", dict(policy="OneCycle", max_lr=0.5,
                                          div_factor=float("inf")), ITER,
     ["lr_config.div_factor=inf", "finite"]),
]


@pytest.mark.parametrize("cfg,run,fragments",
                         [pytest.param(c, r, f, id=i) for i, c, r, f in REFUSED])
def test_values_off_the_real_line_inside_the_run_are_refused(cfg, run, fragments):
    momentum = fragments[0].startswith("momentum_config")
    build = oss.momentum_schedule if momentum else oss.lr_schedule
    with pytest.raises(oss.ConfigError) as err:
        build(cfg, 0.1, **run)
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_negative_min_momentum_is_refused():
    with pytest.raises(oss.ConfigError, match=r"momentum_config.min_momentum=-0.1 must be >= 0"):
        oss.momentum_schedule(dict(policy="CosineAnnealing", min_momentum=-0.1), 0.9, **RUN)


# valid inside the run although unusual: built, and equal to torch_ref there
ACCEPTED = [
    ("inv gamma -0.2 in a 4-iteration run", dict(policy="Inv", gamma=-0.2, by_epoch=False),
     ITER),
    ("inv gamma -0.2 over 5 epochs", dict(policy="Inv", gamma=-0.2, power=2.0), RUN),
    ("poly negative power, min_lr 0", dict(policy="Poly", power=-0.5), RUN),
    ("exp gamma > 1", dict(policy="Exp", gamma=1.5), RUN),
    ("restart weight > 1, min_lr 0", dict(policy="CosineRestart", periods=[2, 3],
                                          restart_weights=[1, 1.5], min_lr=0.0), RUN),
    ("restart weight > 1, ratio < 1", dict(policy="CosineRestart", periods=[2, 3],
                                           restart_weights=[1, 1.5], min_lr_ratio=0.5), RUN),
]


@pytest.mark.parametrize("cfg,run", [pytest.param(c, r, id=i) for i, c, r in ACCEPTED])
def test_unusual_but_valid_configs_match_torch_ref(cfg, run):
    ours, _ = optax_values(cfg, None, run)
    ref, _ = reference(cfg, None, run)
    assert np.all(np.isfinite(ours)) and np.all(ours >= 0)
    assert max_rel_dev(ours, ref) <= 1e-6


# every policy (lr and momentum), with and without warmup, by epoch and by iteration
HOLD = [
    ("lr", dict(policy="Fixed", warmup="linear", warmup_iters=70)),
    ("lr", dict(policy="Step", step=[1, 3], by_epoch=False)),
    ("lr", dict(policy="Step", step=2)),
    ("lr", dict(policy="Exp", gamma=0.9)),
    ("lr", dict(policy="Poly", by_epoch=False)),
    ("lr", dict(policy="Poly", power=2.0, min_lr=1e-3, warmup="exp", warmup_iters=3)),
    ("lr", dict(policy="Inv", gamma=0.5, by_epoch=False)),
    ("lr", dict(policy="CosineAnnealing", min_lr=0.0, by_epoch=False)),
    ("lr", dict(policy="LinearAnnealing", min_lr_ratio=0.1)),
    ("lr", dict(policy="FlatCosineAnnealing", min_lr=1e-4, start_percent=0.5)),
    ("lr", dict(policy="CosineRestart", periods=[2, 3], restart_weights=[1, 0.5], min_lr=0.0)),
    ("lr", dict(policy="StepFixCosineAnnealing", min_lr=0.0, warmup="linear", warmup_iters=5)),
    ("lr", dict(policy="Cyclic", cyclic_times=2)),
    ("lr", dict(policy="OneCycle", max_lr=1.0, three_phase=True)),
    ("lr", dict(policy="OneCycle", max_lr=1.0, total_steps=80)),
    ("momentum", dict(policy="Step", step=2)),
    ("momentum", dict(policy="CosineAnnealing", min_momentum_ratio=0.5, by_epoch=False)),
    ("momentum", dict(policy="LinearAnnealing", min_momentum=0.8)),
    ("momentum", dict(policy="Cyclic", cyclic_times=3, warmup="linear", warmup_iters=4)),
    ("momentum", dict(policy="OneCycle")),
    ("momentum", dict(policy="OneCycle", three_phase=True)),
]


@pytest.mark.parametrize("kind,cfg", HOLD, ids=[f"{k}-{c['policy']}-{i}"
                                                for i, (k, c) in enumerate(HOLD)])
def test_past_the_run_every_policy_holds_the_last_value(kind, cfg):
    build = oss.lr_schedule if kind == "lr" else oss.momentum_schedule
    n = RUN["steps_per_epoch"] * RUN["max_epochs"]
    schedule = build(cfg, 0.1 if kind == "lr" else 0.9, **RUN)
    its = [n - 1, n, n + 1, n + 9, n + 10, 2 * n, 10 * n, 2**31 - 1]
    values = np.asarray(schedule(jnp.asarray(its)))
    np.testing.assert_array_equal(values[1:], values[0])


def test_poly_past_the_run_is_not_negative():
    # the case: update called past max_iters gave -0.025
    values = lr_values(dict(policy="Poly", by_epoch=False), np.arange(8))
    np.testing.assert_allclose(values[:4], [0.1, 0.075, 0.05, 0.025], rtol=1e-6)
    np.testing.assert_array_equal(values[4:], np.float32(0.025))


def test_an_update_past_the_run_keeps_the_last_lr():
    cfg = dict(optimizer=dict(type="SGD", lr=0.1), lr_config=dict(policy="Poly", by_epoch=False),
               runner=dict(type="IterBasedRunner", max_iters=4))
    params = {"w": jnp.zeros(1)}
    tx = oss.build_optimizer(cfg, params)
    state = tx.init(params)
    updates = []
    for _ in range(7):
        u, state = tx.update({"w": jnp.ones(1)}, state, params)
        updates.append(float(u["w"][0]))
    np.testing.assert_allclose(updates, [-0.1, -0.075, -0.05, -0.025, -0.025, -0.025, -0.025],
                               rtol=1e-6)


# ---------------------------------------------------------------- hypothesis
SETTINGS = settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 120)), deadline=None,
                    derandomize=os.environ.get("CI") == "true",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# anything a config may hold, adversarial values included
REALS = st.one_of(st.floats(-2, 2), st.floats(-1e3, 1e3), st.sampled_from(
    [0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 1e30, 0.5, 2.0]))
BASES = st.floats(-1, 10)


@st.composite
def any_config(draw, kind, n):
    lr_only = ["Fixed", "Exp", "Poly", "Inv", "FlatCosineAnnealing", "CosineRestart",
               "StepFixCosineAnnealing"]
    name = draw(st.sampled_from(["Step", "CosineAnnealing", "LinearAnnealing", "Cyclic",
                                 "OneCycle"] + (lr_only if kind == "lr" else [])))
    cfg = dict(policy=name)
    if name not in ("Cyclic", "OneCycle"):
        cfg["by_epoch"] = draw(st.booleans())
    target = draw(st.sampled_from([f"min_{kind}", f"min_{kind}_ratio"]))
    if name == "Step":
        cfg.update(step=draw(st.integers(1, n + 2)), gamma=draw(REALS))
        if draw(st.booleans()):
            cfg[f"min_{kind}"] = draw(REALS)
    elif name == "Exp":
        cfg["gamma"] = draw(REALS)
    elif name == "Inv":
        cfg.update(gamma=draw(REALS), power=draw(REALS))
    elif name == "Poly":
        cfg.update(power=draw(REALS), min_lr=draw(REALS))
    elif name in ("CosineAnnealing", "LinearAnnealing", "StepFixCosineAnnealing",
                  "FlatCosineAnnealing"):
        cfg[target] = draw(REALS)
        if name == "FlatCosineAnnealing":
            cfg["start_percent"] = draw(st.floats(0, 1))
    elif name == "CosineRestart":
        k = draw(st.integers(1, 3))
        periods = draw(st.lists(st.integers(1, n), min_size=k, max_size=k))
        periods[-1] += max(0, n - sum(periods))
        cfg.update({target: draw(REALS)}, periods=periods,
                   restart_weights=draw(st.lists(REALS, min_size=k, max_size=k)))
    elif name == "Cyclic":
        cfg.update(target_ratio=(draw(REALS), draw(REALS)), cyclic_times=draw(st.integers(1, 3)),
                   step_ratio_up=draw(st.floats(0, 0.9)), gamma=draw(st.floats(0.1, 1)))
    elif name == "OneCycle" and kind == "lr":  # max_lr, base/max_momentum: the base values
        cfg.update(max_lr=draw(BASES), div_factor=draw(REALS), final_div_factor=draw(REALS),
                   three_phase=draw(st.booleans()), pct_start=draw(st.floats(0.05, 0.95)))
    elif name == "OneCycle":
        cfg.update(base_momentum=draw(BASES), max_momentum=draw(BASES),
                   three_phase=draw(st.booleans()), pct_start=draw(st.floats(0.05, 0.95)))
    if draw(st.booleans()):
        cfg.update(warmup=draw(st.sampled_from(["constant", "linear", "exp"])),
                   warmup_iters=draw(st.integers(1, 3 * n)),
                   warmup_ratio=draw(st.floats(1e-3, 1)))
    return cfg


MAX_SPE, MAX_EPOCHS = 12, 8
# one array shape for every example, so the eager primitives compile once
ITS = np.arange(2 * MAX_SPE * MAX_EPOCHS + 1)


@st.composite
def built_schedules(draw):
    run = dict(steps_per_epoch=draw(st.integers(1, MAX_SPE)),
               max_epochs=draw(st.integers(1, MAX_EPOCHS)))
    kind = draw(st.sampled_from(["lr", "momentum"]))
    cfg = draw(any_config(kind, run["steps_per_epoch"] * run["max_epochs"]))
    bases = draw(st.lists(st.floats(0, 10), min_size=3, max_size=3))  # torch: lr, momentum >= 0
    try:
        schedule = oss.parse_schedule(cfg, kind, oss.Clock.create(**run))
        per_group = [schedule.base_value(b, 0) for b in bases]
    except oss.ConfigError:
        schedule = per_group = None
    return run, cfg, schedule, per_group


@SETTINGS
@given(built_schedules())
def test_no_built_schedule_leaves_the_real_line(case):
    run, cfg, schedule, per_group = case
    event(f"{cfg['policy']}: {'refused' if schedule is None else 'built'}")
    if schedule is None:
        return
    n = run["steps_per_epoch"] * run["max_epochs"]
    its = jnp.asarray(np.minimum(ITS, 2 * n))[:, None]
    stacked = jax.tree.map(lambda *xs: jnp.asarray(xs, jnp.float32)[None, :], *per_group)
    values = np.asarray(schedule(its, stacked), np.float64)
    assert np.all(np.isfinite(values)), (cfg, values)
    assert np.all(values >= 0), (cfg, values)
    np.testing.assert_array_equal(values[n:], np.broadcast_to(values[n - 1], values[n:].shape))
