"""Every invalid schedule config is refused with a message naming key, value and choices."""

import pytest

import optax_selfsup as oss

RUN = dict(steps_per_epoch=10, max_epochs=5)
ITER_RUN = dict(runner_type="IterBasedRunner", max_iters=100)

LR_CASES = [
    ("unknown policy", dict(policy="Cosine"), RUN,
     ["lr_config.policy='Cosine'", "'CosineAnnealing'", "'OneCycle'", "'StepFixCosineAnnealing'"]),
    ("title-cased lower name unknown", dict(policy="onecycle", max_lr=1.0), RUN,
     ["'Onecycle'", "'OneCycle'"]),
    ("unknown warmup", dict(policy="Fixed", warmup="cosine", warmup_iters=3), RUN,
     ["warmup='cosine'", "'linear'", "'exp'", "'constant'"]),
    ("warmup_iters 0", dict(policy="Fixed", warmup="linear", warmup_iters=0), RUN,
     ["warmup_iters=0", "> 0"]),
    ("warmup_iters negative", dict(policy="Fixed", warmup="linear", warmup_iters=-5), RUN,
     ["warmup_iters=-5"]),
    ("warmup_ratio 0", dict(policy="Fixed", warmup="linear", warmup_iters=5, warmup_ratio=0.0),
     RUN, ["warmup_ratio=0.0", "> 0"]),
    ("warmup_ratio > 1", dict(policy="Fixed", warmup="exp", warmup_iters=5, warmup_ratio=1.5),
     RUN, ["warmup_ratio=1.5", "<= 1"]),
    ("both min", dict(policy="CosineAnnealing", min_lr=0.0, min_lr_ratio=0.1), RUN,
     ["exactly one of 'min_lr' and 'min_lr_ratio'"]),
    ("neither min", dict(policy="LinearAnnealing"), RUN,
     ["exactly one of 'min_lr' and 'min_lr_ratio'"]),
    ("cyclic by epoch", dict(policy="cyclic", by_epoch=True), RUN, ["by_epoch=True", "Cyclic"]),
    ("onecycle by epoch", dict(policy="OneCycle", max_lr=1.0, by_epoch=True), RUN,
     ["by_epoch=True", "OneCycle"]),
    ("restart lengths", dict(policy="CosineRestart", periods=[3, 2], restart_weights=[1],
                             min_lr=0.0), RUN, ["restart_weights=[1]", "2 entries"]),
    ("restart too short", dict(policy="CosineRestart", periods=[2, 2], restart_weights=[1, 1],
                               min_lr=0.0), RUN, ["periods=[2, 2]", "shorter than the run (5)"]),
    ("onecycle total_steps", dict(policy="OneCycle", max_lr=1.0, total_steps=40), RUN,
     ["total_steps=40", "shorter than the run (50"]),
    ("step list decreasing", dict(policy="step", step=[3, 2]), RUN, ["step=[3, 2]", "increasing"]),
    ("step list zero", dict(policy="step", step=[0, 2]), RUN, ["step=[0, 2]", "positive"]),
    ("step float", dict(policy="step", step=1.5), RUN, ["step=1.5"]),
    ("unknown key", dict(policy="CosineAnnealing", min_lr=0.0, min_lr_rate=0.1), RUN,
     ["'min_lr_rate'", "'min_lr_ratio'"]),
    ("by_epoch under iter runner", dict(policy="Step", step=2, by_epoch=True), ITER_RUN,
     ["by_epoch=True", "IterBasedRunner"]),
    ("warmup_by_epoch under iter runner", dict(policy="Fixed", warmup="linear", warmup_iters=2,
                                               warmup_by_epoch=True), ITER_RUN,
     ["warmup_by_epoch=True", "IterBasedRunner"]),
    ("flat start_percent int", dict(policy="FlatCosineAnnealing", start_percent=1, min_lr=0.0),
     RUN, ["start_percent=1", "float in [0, 1]"]),
    ("cyclic step_ratio_up 1", dict(policy="cyclic", step_ratio_up=1.0), RUN,
     ["step_ratio_up=1.0", "< 1"]),
    ("cyclic gamma 0", dict(policy="cyclic", gamma=0), RUN, ["gamma=0", "> 0"]),
    ("anneal strategy", dict(policy="cyclic", anneal_strategy="cosine"), RUN,
     ["anneal_strategy='cosine'", "'cos'", "'linear'"]),
]


@pytest.mark.parametrize("cfg,run,fragments",
                         [pytest.param(c, r, f, id=i) for i, c, r, f in LR_CASES])
def test_invalid_lr_config_is_refused_clearly(cfg, run, fragments):
    with pytest.raises(oss.ConfigError) as err:
        oss.lr_schedule(cfg, 0.1, **run)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_epoch_based_run_needs_steps_per_epoch():
    with pytest.raises(oss.ConfigError, match="steps_per_epoch is required"):
        oss.lr_schedule(dict(policy="Fixed"), 0.1, max_epochs=3)


def test_iter_runner_needs_max_iters_and_epoch_runner_max_epochs():
    with pytest.raises(oss.ConfigError, match="max_iters is required"):
        oss.lr_schedule(dict(policy="Fixed"), 0.1, runner_type="IterBasedRunner")
    with pytest.raises(oss.ConfigError, match="max_epochs is required"):
        oss.lr_schedule(dict(policy="Fixed"), 0.1, steps_per_epoch=4, max_iters=40)
    with pytest.raises(oss.ConfigError, match="'EpochBasedRunner', 'IterBasedRunner'"):
        oss.lr_schedule(dict(policy="Fixed"), 0.1, runner_type="Epoch", max_iters=40)


MOMENTUM_CASES = [
    ("lr-only policy", dict(policy="Poly"), ["momentum_config.policy='Poly'", "'Cyclic'"]),
    ("warmup_by_epoch is lr only", dict(policy="Step", step=2, warmup="linear", warmup_iters=3,
                                        warmup_by_epoch=True), ["'warmup_by_epoch'"]),
    ("min momentum both", dict(policy="CosineAnnealing", min_momentum=0.8,
                               min_momentum_ratio=0.9),
     ["exactly one of 'min_momentum' and 'min_momentum_ratio'"]),
    ("cyclic by epoch", dict(policy="Cyclic", by_epoch=True), ["by_epoch=True"]),
    ("onecycle pct int", dict(policy="OneCycle", pct_start=0), ["pct_start=0"]),
]


@pytest.mark.parametrize("cfg,fragments",
                         [pytest.param(c, f, id=i) for i, c, f in MOMENTUM_CASES])
def test_invalid_momentum_config_is_refused_clearly(cfg, fragments):
    with pytest.raises(oss.ConfigError) as err:
        oss.momentum_schedule(cfg, 0.9, **RUN)
    for fragment in fragments:
        assert fragment in str(err.value)
