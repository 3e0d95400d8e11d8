"""MMEngine ``param_scheduler`` schedules against MMEngine's own scheduler classes.

The reference (``mmengine_sched_ref``) builds the real schedulers (MMEngine 0.10.7, MMPretrain
1.2.0's ``CosineAnnealingWeightDecay``) on a torch optimizer inside MMEngine's ``OptimWrapper``
as the Runner does and steps them in the loops' hook order; ``torch_ref.mmengine.run_mmengine`` (the
real Runner) checks a few end to end. Every value of every group at every iteration must be
within 1e-6 (float32) / 1e-12 (float64) of the group's scale: its base, or the largest value
it takes when that is larger (a weight decay of 0 pulled up to ``eta_min``, OneCycle).
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmengine_sched_ref import BASES, PARAMS, check, ours, reference_values

from optax_selfsup import ConfigError
from optax_selfsup.schedules.mmengine import parse_param_scheduler
from optax_selfsup.schedules.mmengine_loop import HookWrite, TrainLoop
from optax_selfsup.schedules.mmengine_parse import SchedulerWarning

# --- every scheduler type ----------------------------------------------------------------

FAMILIES = {
    "Constant": dict(factor=0.25, begin=1, end=5),
    "CosineAnnealing": dict(eta_min=1e-3),
    "Exponential": dict(gamma=0.8),
    "Linear": dict(start_factor=0.1, end_factor=0.9, end=6),
    "MultiStep": dict(milestones=[0, 2, 4, 4], gamma=0.5),
    "Step": dict(step_size=2, gamma=0.5),
    "Poly": dict(eta_min=1e-3, power=2.0),
    "CosineRestart": dict(periods=[3, 4], restart_weights=[1.0, 0.5], eta_min_ratio=0.1),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("form", ["LR", "Momentum", "ParamScheduler"])
def test_every_scheduler_type_every_iteration(family, form):
    cfg = dict(type=family + form, **FAMILIES[family])
    if form == "ParamScheduler":
        cfg["param_name"] = "weight_decay"
    second = dict(cfg, by_epoch=False, begin=3)
    second.pop("end", None)
    check([cfg, second], epochs=8, L=3)


def test_momentum_schedulers_move_betas0_of_adamw():
    ps = [dict(type="LinearMomentum", start_factor=0.5, by_epoch=False, end=10),
          dict(type="CosineAnnealingMomentum", eta_min=0.85, by_epoch=True, begin=2)]
    check(ps, epochs=6, L=4, optimizer="AdamW")


def test_onecycle_every_option_and_per_group_eta_max():
    for ps in ([dict(type="OneCycleLR", eta_max=[0.3, 0.2, 0.1, 9.0], by_epoch=False,
                     total_steps=40, three_phase=True, pct_start=0.25)],
               [dict(type="OneCycleLR", eta_max=0.3, anneal_strategy="linear",
                     by_epoch=True, convert_to_iter_based=True, begin=1)],
               [dict(type="OneCycleLR", eta_max=0.3, total_steps=7, end=7, by_epoch=True,
                     convert_to_iter_based=True, pct_start=0.5)],  # total_steps * L
               [dict(type="LinearLR", by_epoch=False, end=7),  # OneCycle resets the bases
                dict(type="OneCycleParamScheduler", param_name="lr", eta_max=0.4,
                     by_epoch=True, div_factor=10.0),
                dict(type="CosineAnnealingLR", eta_min_ratio=0.5, by_epoch=True, begin=4)]):
        check(ps, epochs=8, L=5, params=("lr",))


def test_onecycle_eta_max_list_has_the_optim_wrappers_extra_group():
    loop = TrainLoop.epochs(2, 5)
    with pytest.raises(ConfigError, match=r"eta_max has 3 values.*4 param groups"):
        parse_param_scheduler(dict(type="OneCycleLR", eta_max=[1, 2, 3]), loop, n_groups=3)
    one = parse_param_scheduler(dict(type="OneCycleLR", eta_max=[2.0], by_epoch=False), loop,
                                n_groups=1)
    assert ours(one.for_param("lr"), 1, [5.0])[0, 0] == pytest.approx(2.0 / 25)


def test_cosine_restart_jumps_and_leaves_the_value_after_its_periods():
    ps = [dict(type="CosineRestartLR", periods=[5, 3, 4], restart_weights=[1, 0.6, 0.3],
               eta_min=1e-3, by_epoch=False, begin=2),
          dict(type="CosineRestartParamScheduler", param_name="weight_decay", periods=[2, 3],
               restart_weights=[0.5, 1.0], eta_min_ratio=0.2, by_epoch=True),
          dict(type="CosineRestartMomentum", periods=[1, 2.5], restart_weights=[1, 0.9],
               eta_min=0.5, by_epoch=True, begin=1, convert_to_iter_based=True)]  # periods * L
    check(ps, epochs=7, L=4)


def test_cosine_continues_periodically_past_t_max():
    ps = [dict(type="CosineAnnealingLR", T_max=4, eta_min=0.01, by_epoch=False),
          dict(type="CosineAnnealingWeightDecay", T_max=3, eta_min=0.02, by_epoch=True),
          dict(type="CosineAnnealingMomentum", T_max=1, eta_min_ratio=0.5, by_epoch=False,
               begin=5)]
    scheds, _ = check(ps, epochs=9, L=5)
    assert scheds.for_param("lr").n_segments >= 5  # a turn-around every 2 * T_max steps


def test_weight_decay_zero_groups():
    # MMPretrain's cosine keeps base-0 groups at 0; MMEngine's generic one pulls them up
    ps = [dict(type="CosineAnnealingWeightDecay", eta_min=0.2, by_epoch=False),
          dict(type="CosineAnnealingParamScheduler", param_name="weight_decay", begin=10,
               eta_min=0.1, by_epoch=False)]
    scheds, _ = check(ps, iters=30, L=4, params=("weight_decay",))
    wd = ours(scheds.for_param("weight_decay"), 30, BASES["weight_decay"])
    assert np.all(wd[:10, 1] == 0) and wd[-1, 1] > 0 and np.all(np.diff(wd[:10, 2]) > 0)


# --- composition -------------------------------------------------------------------------


def test_commuting_overlaps_need_no_table():
    ps = [dict(type="LinearLR", start_factor=0.25, by_epoch=False, end=25),
          dict(type="MultiStepLR", milestones=[2, 4, 4], by_epoch=True),
          dict(type="ExponentialLR", gamma=0.97, by_epoch=False, begin=5, end=30),
          dict(type="StepLR", step_size=7, gamma=0.5, by_epoch=False)]
    check(ps, epochs=8, L=5, expect_table=False)
    cosines = [dict(type="CosineAnnealingLR", eta_min=1e-3, by_epoch=False, T_max=20),
               dict(type="PolyLR", eta_min=1e-3, power=1.5, by_epoch=True, begin=1),
               dict(type="StepLR", step_size=9, gamma=0.5, by_epoch=False)]  # cut, no table
    check(cosines, epochs=6, L=5, expect_table=False)


def test_non_commuting_overlaps_are_tabulated_exactly():
    ps = [dict(type="LinearLR", start_factor=0.01, by_epoch=False, end=30),
          dict(type="CosineAnnealingLR", eta_min=1e-3, by_epoch=False, begin=10),
          dict(type="PolyLR", eta_min=2e-3, by_epoch=True, begin=2, end=5)]
    scheds, _ = check(ps, epochs=8, L=5, expect_table=True)
    assert scheds.for_param("lr").table_rows <= 40


def test_one_step_ranges_and_a_milestone_at_zero():
    # ConstantLR over one step multiplies and never restores (its restore step is step 0)
    ps = [dict(type="ConstantLR", factor=0.5, by_epoch=False, begin=2, end=3),
          dict(type="LinearLR", start_factor=0.3, by_epoch=False, begin=5, end=6),
          dict(type="PolyLR", eta_min=0.01, by_epoch=True, begin=1, end=2),
          dict(type="MultiStepLR", milestones=[0, 0, 3], gamma=0.5, by_epoch=False, begin=4)]
    scheds, _ = check(ps, epochs=4, L=3, params=("lr",))
    lr = ours(scheds.for_param("lr"), 12, BASES["lr"])
    assert lr[11, 0] == pytest.approx(0.1 * 0.5 * 0.3 * 0.25 * 0.5, rel=1e-6)


def test_gaps_keep_the_value_and_finished_schedulers_leave_it():
    ps = [dict(type="LinearLR", start_factor=0.5, end_factor=0.1, by_epoch=False, end=6),
          dict(type="CosineAnnealingLR", eta_min=1e-3, by_epoch=True, begin=3, end=5),
          dict(type="ConstantLR", factor=0.5, by_epoch=False, begin=30, end=35)]
    check(ps, epochs=8, L=5)


def test_convert_to_iter_based_truncates_fractional_epochs():
    ps = [dict(type="LinearLR", start_factor=0.1, by_epoch=True, begin=0.5, end=2.7,
               convert_to_iter_based=True),
          dict(type="CosineAnnealingLR", by_epoch=True, begin=2.7, T_max=4.5, eta_min=1e-3,
               convert_to_iter_based=True),
          dict(type="MultiStepLR", milestones=[1, 5], by_epoch=True,
               convert_to_iter_based=True),
          dict(type="StepParamScheduler", param_name="weight_decay", step_size=1.5,
               by_epoch=True, convert_to_iter_based=True)]
    check(ps, epochs=8, L=4)


def test_by_epoch_scheduler_under_an_iteration_loop_only_takes_its_construction_step():
    ps = [dict(type="LinearLR", start_factor=0.1),  # by_epoch=True by default: end = 1
          dict(type="CosineAnnealingLR", by_epoch=False, eta_min=1e-3),
          dict(type="CosineAnnealingLR", by_epoch=True, begin=0, end=40, eta_min=1e-3,
               convert_to_iter_based=True)]  # converted with the loader's length: 40 * L
    with pytest.warns(SchedulerWarning, match=r"param_scheduler\[0\] \(LinearLR\).*"
                      "IterBasedTrainLoop"):
        scheds, _ = check(ps, iters=50, L=2)
    assert ours(scheds.for_param("lr"), 1, BASES["lr"])[0, 0] == pytest.approx(0.01)


def test_simsiam_hook_writes_and_the_schedulers_continue_from_them():
    for every in ("epoch", "iter"):
        writes = [HookWrite((False, True, False), 0.05, every)]
        ps = [dict(type="CosineAnnealingLR", by_epoch=True, T_max=6),
              dict(type="LinearLR", by_epoch=False, end=9, start_factor=0.2)]
        check(ps, epochs=6, L=4, writes=writes, params=("lr",))
    with pytest.warns(SchedulerWarning):
        check(ps, iters=10, L=4, writes=[HookWrite((True, False, False), 0.3, "epoch")],
              params=("lr",))


def test_simsiam_config_through_the_real_runner():
    from torch_ref.mmengine import run_mmengine

    shapes = {"backbone.w": (2,), "neck.w": (2,), "head.predictor.w": (2,)}
    values = {k: np.zeros(s, np.float64) for k, s in shapes.items()}
    grads = [{k: np.ones(s) for k, s in shapes.items()}] * 12
    cfg = dict(default_scope="mmpretrain",
               optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
                                  paramwise_cfg=dict(custom_keys={
                                      "predictor": dict(fix_lr=True)})),
               custom_hooks=[dict(type="SimSiamHook", priority="HIGH", fix_pred_lr=True,
                                  lr=0.05)],
               param_scheduler=[dict(type="CosineAnnealingLR", T_max=4, by_epoch=True,
                                     begin=0, end=4)],
               train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=4))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=3)
    names = list(shapes)
    fix = [bool(run.groups[n].get("fix_lr", False)) for n in names]
    loop = TrainLoop.from_train_cfg(cfg["train_cfg"], steps_per_epoch=3)
    write = HookWrite.simsiam(cfg["custom_hooks"][0], fix)
    lr = parse_param_scheduler(cfg["param_scheduler"], loop, n_groups=3,
                               hook_writes=[write]).for_param("lr")
    with jax.enable_x64(True):
        got = np.asarray(lr(np.arange(12), np.asarray([run.groups[n]["lr"] for n in names])))
    want = np.stack([run.lr[n] for n in names], axis=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    assert fix == [False, False, True] and np.all(want[:, 2] == 0.05)


# --- randomised lists --------------------------------------------------------------------


@st.composite
def scheduler_lists(draw):
    epochs, L = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    iteration_loop = draw(st.booleans()) and draw(st.booleans())
    scheds = []
    for _ in range(draw(st.integers(1, 4))):
        param = draw(st.sampled_from(PARAMS))
        family = draw(st.sampled_from(sorted(FAMILIES) + ["CAWD"]))
        by_epoch = draw(st.booleans())
        span = epochs if by_epoch else epochs * L
        cfg = dict(by_epoch=by_epoch, begin=draw(st.integers(0, max(span - 1, 0))))
        if draw(st.booleans()):
            cfg["end"] = draw(st.integers(cfg["begin"] + 1, span + 2))
        if by_epoch and draw(st.integers(0, 3)) == 0:
            cfg["convert_to_iter_based"] = True
        if family == "CAWD":
            family, cfg["type"] = "CosineAnnealing", "CosineAnnealingWeightDecay"
            param = "weight_decay"
        elif param != "weight_decay" and draw(st.booleans()):
            cfg["type"] = family + {"lr": "LR", "momentum": "Momentum"}[param]
        else:
            cfg["type"], cfg["param_name"] = family + "ParamScheduler", param
        opts = dict(FAMILIES[family])
        opts.pop("begin", None), opts.pop("end", None)
        if family == "CosineAnnealing":
            opts = draw(st.sampled_from([{}, dict(eta_min=1e-3), dict(eta_min_ratio=0.1),
                                         dict(T_max=2, eta_min=0.02)]))
        if family == "Linear":
            opts["start_factor"] = draw(st.sampled_from([0.001, 0.5, 1.0]))
            opts["end_factor"] = draw(st.sampled_from([0.0, 0.3, 1.0]))
        scheds.append(dict(cfg, **opts))
    return scheds, epochs, L, iteration_loop


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(scheduler_lists())
def test_random_scheduler_lists(case):
    ps, epochs, L, iteration_loop = case
    kw = dict(iters=epochs * L) if iteration_loop else dict(epochs=epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SchedulerWarning)
        try:
            reference_values(ps, by_epoch_loop=not iteration_loop, steps_per_epoch=L,
                             max_epochs=epochs, max_iters=epochs * L, bases=BASES,
                             params=("lr",))
        except (ValueError, AssertionError, ZeroDivisionError) as err:
            loop = TrainLoop.iters(epochs * L, L) if iteration_loop else \
                TrainLoop.epochs(epochs, L)
            with pytest.raises(ConfigError):  # upstream refuses it: so do we
                parse_param_scheduler(ps, loop)
            assert "end should be larger than begin" in str(err)
            return
        check(ps, L=L, **kw)


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg, match", [
    (dict(type="CosineLR"), r"'CosineLR' is not a known param scheduler; known: .*"
                            r"'CosineAnnealingLR'"),
    (dict(type="ReduceOnPlateauLR"), r"ReduceOnPlateauLR.*validation metric"),
    (dict(type="CosineAnnealingLR", eta_min=0, eta_min_ratio=0.1), "exactly one"),
    (dict(type="CosineRestartLR", periods=[2]), "exactly one"),
    (dict(type="CosineAnnealingLR", T_maxx=3), r"unknown key\(s\) 'T_maxx'"),
    (dict(type="LinearLR", start_factor=1.5), r"start_factor=1.5 must be >= 0 and <= 1"),
    (dict(type="LinearLR", start_factor=0.0), "divides by zero"),
    (dict(type="ConstantLR", factor=0.0), "divides by it"),
    (dict(type="StepLR", step_size=0), r"step_size=0 must be >= 1"),
    (dict(type="LinearLR", by_epoch=False, convert_to_iter_based=True), "by_epoch=True"),
    (dict(type="LinearLR", begin=3, end=3), r"end=3 must be larger than begin=3"),
    (dict(type="LinearLR", begin=0.5), r"begin=0.5 must be an integer"),
    (dict(type="OneCycleLR", eta_max=1, total_steps=5, by_epoch=False), "Tried to step"),
    (dict(type="OneCycleLR", eta_max=1, pct_start=1), "pct_start=1 must be a float"),
    (dict(type="OneCycleParamScheduler", param_name="momentum"), "only 'lr'"),
    (dict(type="CosineAnnealingParamScheduler", param_name="betas"), r"param_name='betas'"),
    (dict(type="MultiStepLR", milestones=[1.5], convert_to_iter_based=True),
     r"milestones=3.0 must be an integer|milestones=.* must be an integer"),
    ([dict(type="LinearLR"), "x"], r"param_scheduler\[1\] must be a dict"),
])
def test_bad_configs_are_refused_by_name(cfg, match):
    with pytest.raises(ConfigError, match=match):
        parse_param_scheduler(cfg, TrainLoop.epochs(10, 3))


def test_scope_momentum_and_loop_errors():
    loop = TrainLoop.epochs(4, 2)
    with pytest.raises(ConfigError, match="'mmpretrain' scope"):
        parse_param_scheduler(dict(type="CosineAnnealingWeightDecay"), loop,
                              default_scope="mmengine")
    parse_param_scheduler(dict(type="mmpretrain.CosineAnnealingWeightDecay"), loop,
                          default_scope="mmengine")
    with pytest.raises(ConfigError, match="betas"):
        parse_param_scheduler(dict(type="CosineAnnealingParamScheduler", param_name="momentum"),
                              loop, optimizer_momentum="betas")
    with pytest.raises(ConfigError, match="needs an optimizer with momentum"):
        parse_param_scheduler(dict(type="StepMomentum", step_size=1), loop,
                              optimizer_momentum=None)
    with pytest.raises(ConfigError, match="exactly one of 'type' and 'by_epoch'"):
        TrainLoop.from_train_cfg(dict(type="EpochBasedTrainLoop", by_epoch=True, max_epochs=2))
    with pytest.raises(ConfigError, match="convert_to_iter_based needs steps_per_epoch"):
        parse_param_scheduler(dict(type="LinearLR", convert_to_iter_based=True),
                              TrainLoop.iters(10))
    assert HookWrite.simsiam(dict(type="SimSiamHook", fix_pred_lr=True, lr=0.1,
                                  adjust_by_epoch=False), (True,)).every == "iter"
    assert HookWrite.simsiam(dict(type="SimSiamHook", fix_pred_lr=False, lr=0.1), ()) is None
    with pytest.raises(ConfigError, match="fix_pred_lr=1 must be True or False"):
        HookWrite.simsiam(dict(type="SimSiamHook", fix_pred_lr=1, lr=0.1), ())
    with pytest.raises(ConfigError, match="one entry per param group"):
        parse_param_scheduler([], loop, hook_writes=[HookWrite((True,), 0.1)])


# --- the API -----------------------------------------------------------------------------


def test_jit_vmap_shapes_and_holding_past_the_end():
    loop = TrainLoop.from_train_cfg(dict(by_epoch=True, max_epochs=4, val_interval=1), 5)
    scheds = parse_param_scheduler(
        [dict(type="LinearLR", by_epoch=False, end=5, start_factor=0.1),
         dict(type="CosineAnnealingLR", by_epoch=True, begin=1, eta_min=1e-4)], loop)
    lr = scheds.for_param("lr")
    base = np.asarray([0.1, 0.2], np.float32)
    values = jax.jit(jax.vmap(lr, in_axes=(0, None)))(np.asarray([19, 10**6, -3, 0]), base)
    assert values.shape == (4, 2) and values.dtype == np.float32
    np.testing.assert_array_equal(values[0], values[1])  # held past the end
    np.testing.assert_array_equal(values[2], values[3])
    np.testing.assert_array_equal(values, ours(lr, 20, base)[[19, 19, 0, 0]])
    shape = jax.eval_shape(lr, jax.ShapeDtypeStruct((3, 4), np.int32), np.float32(0.5))
    assert shape.shape == (3, 4)
    assert scheds.params == ("lr",)
    np.testing.assert_array_equal(ours(scheds.for_param("momentum"), 7, base)[6], base)
    with jax.enable_x64(True):
        assert jax.eval_shape(lr, 3, base).dtype == np.float64
