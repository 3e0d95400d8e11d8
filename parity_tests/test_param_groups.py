"""One torch param group per parameter (MMSelfSup 0.x), and the per-group schedule lists.

MMSelfSup 0.x's constructor turns a missing ``paramwise_options`` into ``{}`` and
so always makes one group per parameter: OneCycle's ``max_lr`` / ``base_momentum``
/ ``max_momentum`` lists then hold one value per parameter, and mmcv's
``format_param`` refuses a list of another length ("expected N values for SGD").
"""

import dataclasses
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optax_selfsup as oss
import torch_ref
from optax_selfsup.builder import build_from_plan

from recipe_harness import (
    MODEL,
    gradients,
    initial_values,
    jax_order,
    nest,
    param_error,
    rel_error,
    run_jax,
    run_torch,
)

SPE, EPOCHS = 4, 3  # 12 iterations
RUNNER = dict(type="EpochBasedRunner", max_epochs=EPOCHS)
NAMES = jax_order(dict.fromkeys(MODEL, 0))
N = len(NAMES)
MAX_LR = [0.02 * (1 + i % 7) for i in range(N)]
BASE_M = [0.80 + 0.01 * (i % 5) for i in range(N)]
MAX_M = [0.95 + 0.01 * (i % 4) for i in range(N)]
ORDER_WARNING = "value i goes to the i-th leaf"


def _named(values=None):
    return [(n, torch.nn.Parameter(torch.zeros(1) if values is None
                                   else torch.tensor(values[n]))) for n in NAMES]


def test_torch_ref_makes_one_group_per_parameter_without_paramwise_options():
    named = _named()
    optimizer = torch_ref.build_torch_optimizer(dict(type="SGD", lr=0.1, momentum=0.9), named)
    assert len(optimizer.param_groups) == N
    assert [g["params"][0] is p for g, (_, p) in zip(optimizer.param_groups, named)] == [True] * N


def test_torch_ref_refuses_a_list_of_another_length_as_mmcv_does():
    cfg = dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), runner=RUNNER,
               lr_config=dict(policy="OneCycle", max_lr=MAX_LR[:-1]))
    built = torch_ref.build(cfg, _named(), steps_per_epoch=SPE)
    runner = torch_ref.Runner(built)
    with pytest.raises(ValueError, match=f"expected {N} values for SGD, got {N - 1}"):
        runner.train(lambda it: {}, num_iters=1)


@pytest.mark.parametrize("optimizer", [
    dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4),
    dict(type="AdamW", lr=1e-3, weight_decay=0.05),
])
def test_per_parameter_onecycle_lists_match_torch_ref(optimizer):
    """No paramwise_options: each parameter still follows its own max_lr and momenta."""
    cfg = dict(optimizer=optimizer, runner=RUNNER,
               lr_config=dict(policy="OneCycle", max_lr=MAX_LR, pct_start=0.25),
               momentum_config=dict(policy="OneCycle", base_momentum=BASE_M,
                                    max_momentum=MAX_M, pct_start=0.25))
    values, grads = initial_values(), gradients(SPE * EPOCHS)
    with pytest.warns(UserWarning, match=ORDER_WARNING):
        ours, lrs, moms, updated = run_jax(cfg, values, grads, SPE)
    ref, ref_lrs, ref_moms, built = run_torch(cfg, values, grads, SPE)
    assert len(built.optimizer.param_groups) == N
    # by hand: OneCycle starts at max_lr / div_factor and at max_momentum, per parameter
    np.testing.assert_allclose(ref_lrs[0], np.asarray(MAX_LR) / 25, rtol=1e-12)
    np.testing.assert_allclose(ref_moms[0], MAX_M, rtol=1e-12)
    np.testing.assert_allclose(lrs[0], np.asarray(MAX_LR) / 25, rtol=1e-6)
    assert rel_error(lrs, ref_lrs) <= 1e-6
    assert rel_error(moms, ref_moms) <= 1e-6
    assert param_error(ours[-1], ref[-1]) <= 1e-5


def test_the_plan_says_which_parameters_form_a_group():
    tree = jax.tree.map(jnp.asarray, _tree_shapes())
    plan = oss.plan_optimizer(dict(optimizer=dict(type="SGD", lr=0.1), runner=RUNNER), tree,
                              steps_per_epoch=SPE)
    assert plan.group_of == list(range(N)) and plan.num_groups == N


def _tree_shapes():
    return nest({n: np.zeros(MODEL[n]) for n in NAMES})


def test_a_one_group_plan_gives_every_parameter_the_groups_value():
    """The builder reads ``Plan.group_of`` (a reader such as MMEngine's, without
    paramwise_cfg, makes one group): compared with torch_ref's hook on one torch group."""
    tree = jax.tree.map(jnp.asarray, _tree_shapes())
    cfg = dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), runner=RUNNER,
               lr_config=dict(policy="OneCycle", max_lr=[0.3]))
    with pytest.raises(oss.ConfigError, match=f"max_lr has 1 values but the params have {N}"):
        oss.plan_optimizer(cfg, tree, steps_per_epoch=SPE)
    plan = oss.plan_optimizer(dict(cfg, lr_config=dict(policy="OneCycle", max_lr=0.3)), tree,
                              steps_per_epoch=SPE)
    one = dataclasses.replace(plan, group_of=[0] * N, num_groups=1, schedules=dict(
        plan.schedules, lr=oss.parse_schedule(cfg["lr_config"], "lr", plan.clock)))
    tx = build_from_plan(one, tree)
    state = tx.init(tree)
    grads = jax.tree.map(jnp.ones_like, tree)
    ours = []
    for _ in range(SPE * EPOCHS):
        _, state = tx.update(grads, state, tree)  # then the lr of that update is reported
        ours.append(np.asarray(jax.tree.leaves(oss.current_hparams(state)["lr"])))
    p = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([dict(params=[p])], lr=0.1, momentum=0.9)
    hook = torch_ref.build_schedule_hook(cfg["lr_config"], "lr")
    runner = torch_ref.ScheduleRunner(optimizer, [hook], steps_per_epoch=SPE,
                                      max_epochs=EPOCHS)
    ref = []
    runner.run(lambda r: ref.append(r.optimizer.param_groups[0]["lr"]))
    ours = np.asarray(ours)
    assert ours.shape == (SPE * EPOCHS, N)
    np.testing.assert_allclose(ours, np.tile(np.asarray(ref)[:, None], (1, N)), rtol=1e-6)
    with pytest.raises(ValueError, match="Plan.group_of"):
        dataclasses.replace(plan, group_of=[0] * N, num_groups=0)


@pytest.mark.parametrize("key,config", [
    ("lr_config.max_lr", dict(lr_config=dict(policy="OneCycle", max_lr=MAX_LR[:-1]))),
    ("lr_config.max_lr", dict(lr_config=dict(policy="OneCycle", max_lr=MAX_LR + [0.1]))),
    ("momentum_config.base_momentum", dict(momentum_config=dict(
        policy="OneCycle", base_momentum=BASE_M[:3]))),
    ("momentum_config.max_momentum", dict(momentum_config=dict(
        policy="OneCycle", max_momentum=MAX_M + [0.9, 0.9]))),
])
def test_a_per_group_list_of_another_length_is_refused(key, config):
    """Also with paramwise_options absent (one group per parameter all the same)."""
    cfg = dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), runner=RUNNER, **config)
    values = config.get("lr_config", config.get("momentum_config"))[key.split(".")[1]]
    tree = jax.tree.map(jnp.asarray, _tree_shapes())
    with pytest.raises(oss.ConfigError) as err:
        oss.build_optimizer(cfg, tree, steps_per_epoch=SPE)
    message = str(err.value)
    assert f"{key} has {len(values)} values" in message, message
    assert f"{N} parameters" in message, message


def test_torch_optimizer_refuses_a_list_longer_than_the_groups():
    clock = oss.Clock.create(max_iters=10, runner_type="IterBasedRunner")
    schedule = oss.parse_schedule(dict(policy="OneCycle", max_lr=[0.1, 0.2, 0.3]), "lr", clock)
    params = {"a": jnp.ones(2), "b": jnp.ones(2)}
    tx = oss.torch_optimizer("SGD", lr=0.1, lr_schedule=schedule)
    with pytest.raises(oss.ConfigError, match=re.escape("max_lr has 3 per-group values but "
                                                        "there are 2 param groups")):
        tx.init(params)
    tx = oss.torch_optimizer("SGD", lr=0.1, lr_schedule=schedule,
                             group_index={"a": 0, "b": 2})
    lrs = oss.current_hparams(tx.init(params))["lr"]
    assert float(lrs["a"]) == pytest.approx(0.1 / 25) and float(lrs["b"]) == pytest.approx(0.3 / 25)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(1e-3, 1.0), min_size=1, max_size=6), st.integers(-1, 1))
def test_max_lr_values_go_to_the_leaves_in_order(values, delta):
    """Any number of leaves: value i is leaf i's peak; any other length is refused."""
    names = [f"p{i}" for i in range(len(values))]  # one digit: sorted = as written
    tree = {n: jnp.ones(2) for n in names}
    listed = values + [0.5] if delta > 0 else (values[:-1] if delta < 0 else values)
    cfg = dict(optimizer=dict(type="SGD", lr=0.1), runner=dict(type="IterBasedRunner",
                                                               max_iters=20),
               lr_config=dict(policy="OneCycle", max_lr=listed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if delta != 0 or not listed:
            with pytest.raises(oss.ConfigError, match="max_lr"):
                oss.build_optimizer(cfg, tree)
            return
        tx = oss.build_optimizer(cfg, tree)
    lrs = oss.current_hparams(tx.init(tree))["lr"]
    named = [(n, torch.nn.Parameter(torch.zeros(2))) for n in names]
    built = torch_ref.build(cfg, named)
    schedules = [h for h in built.hooks if h is not built.optimizer_hook]
    torch_ref.ScheduleRunner(built.optimizer, schedules, **built.runner_kwargs).run(num_iters=1)
    ref = [g["lr"] for g in built.optimizer.param_groups]
    np.testing.assert_allclose([float(lrs[n]) for n in names], ref, rtol=1e-6)
    np.testing.assert_allclose(ref, np.asarray(values) / 25, rtol=1e-12)
