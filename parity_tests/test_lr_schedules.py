"""Every lr policy x warmup x by_epoch x warmup_by_epoch against torch_ref, per iteration."""

import itertools

import numpy as np
import pytest

from schedule_harness import max_rel_dev, optax_values, reference

SPE, EPOCHS = 100, 20  # 2000 iterations
RUN = dict(steps_per_epoch=SPE, max_epochs=EPOCHS)
TOL = 1e-6  # float32 in the graph vs float64 reference, relative to the group's peak value


def _policies(by_epoch):
    """(id, config) for every lr policy valid with this by_epoch."""
    n = EPOCHS if by_epoch else EPOCHS * SPE
    out = [
        ("fixed", dict(policy="fixed")),
        ("step_int", dict(policy="step", step=max(n // 6, 1))),
        ("step_list_min", dict(policy="Step", step=[n // 4, n // 2, 3 * n // 4], gamma=0.3,
                               min_lr=0.004)),
        ("exp", dict(policy="exp", gamma=0.9 if by_epoch else 0.999)),
        ("poly", dict(policy="poly", power=2.0, min_lr=1e-4)),
        ("inv", dict(policy="inv", gamma=0.1 if by_epoch else 0.001, power=0.75)),
        ("cos_min_lr", dict(policy="CosineAnnealing", min_lr=1e-3)),
        ("cos_ratio", dict(policy="CosineAnnealing", min_lr_ratio=0.01)),
        ("linear", dict(policy="LinearAnnealing", min_lr_ratio=0.05)),
        ("flat_cos", dict(policy="FlatCosineAnnealing", start_percent=0.45, min_lr=1e-5)),
        ("restart", dict(policy="CosineRestart", periods=[n // 4, n // 4, n // 2],
                         restart_weights=[1, 0.7, 0.4], min_lr_ratio=0.1)),
        ("stepfix", dict(policy="StepFixCosineAnnealing", min_lr=1e-6)),
    ]
    if not by_epoch:
        out += [
            ("cyclic", dict(policy="cyclic", target_ratio=(10, 1e-4), cyclic_times=1,
                            step_ratio_up=0.4)),
            ("cyclic_gamma_linear", dict(policy="cyclic", target_ratio=(5.0, 0.5),
                                         cyclic_times=3, step_ratio_up=0.3, gamma=0.7,
                                         anneal_strategy="linear")),
            ("cyclic_up0_float", dict(policy="cyclic", target_ratio=4.0, cyclic_times=2,
                                      step_ratio_up=0.0, gamma=0.5)),
            ("cyclic_partial", dict(policy="cyclic", cyclic_times=3, step_ratio_up=0.5)),
            ("onecycle", dict(policy="OneCycle", max_lr=0.5)),
            ("onecycle_3phase", dict(policy="OneCycle", max_lr=[0.5, 0.2, 1.0],
                                     three_phase=True, pct_start=0.25, div_factor=10,
                                     final_div_factor=100)),
            ("onecycle_total_linear", dict(policy="OneCycle", max_lr=0.5, total_steps=2600,
                                           anneal_strategy="linear")),
        ]
    return out


def _warmups():
    yield "none", {}
    for kind, by_ep in itertools.product(("constant", "linear", "exp"), (False, True)):
        iters = 3 if by_ep else 250  # 250: warmup ends inside an epoch
        yield f"{kind}-{'ep' if by_ep else 'it'}", dict(warmup=kind, warmup_iters=iters,
                                                          warmup_ratio=0.01,
                                                          warmup_by_epoch=by_ep)


CASES = []
for by_epoch in (True, False):
    for (pid, policy), (wid, warm) in itertools.product(_policies(by_epoch), _warmups()):
        CASES.append(pytest.param({**policy, **warm, "by_epoch": by_epoch},
                                  id=f"{pid}-{wid}-{'by_epoch' if by_epoch else 'by_iter'}"))


@pytest.mark.parametrize("lr_config", CASES)
def test_lr_policy_matches_torch_ref(lr_config):
    ours, _ = optax_values(lr_config, None, RUN)
    ref, _ = reference(lr_config, None, RUN)
    assert ours.shape == ref.shape == (SPE * EPOCHS, 3)
    dev = max_rel_dev(ours, ref)
    assert dev <= TOL, f"max relative deviation {dev:.3g}"


@pytest.mark.parametrize("lr_config", [
    dict(policy="CosineAnnealing", min_lr=0.0, warmup="linear", warmup_iters=300),
    dict(policy="Poly", power=1.0, min_lr=0.0),
    dict(policy="Step", step=[500, 1500]),
    dict(policy="OneCycle", max_lr=0.2, three_phase=True),
])
def test_iter_based_runner_defaults_to_by_iteration(lr_config):
    run = dict(runner_type="IterBasedRunner", max_iters=1800)
    ours, _ = optax_values(lr_config, None, run)
    ref, _ = reference(lr_config, None, run)
    assert max_rel_dev(ours, ref) <= TOL
    # the value really moves (not the inert by-epoch upstream behaviour)
    assert not np.allclose(ours[0], ours[-1])
