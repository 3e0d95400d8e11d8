"""Every momentum policy x warmup x by_epoch, with SGD (momentum) and Adam (betas[0])."""

import itertools

import pytest

from schedule_harness import max_rel_dev, optax_values, reference

SPE, EPOCHS = 100, 20
RUN = dict(steps_per_epoch=SPE, max_epochs=EPOCHS)
TOL = 1e-6

LR = dict(policy="CosineAnnealing", min_lr=0.0, by_epoch=False)


def _policies(by_epoch):
    n = EPOCHS if by_epoch else EPOCHS * SPE
    out = [
        ("step", dict(policy="step", step=n // 5)),
        ("step_list_min", dict(policy="Step", step=[n // 3, 2 * n // 3], gamma=0.8,
                               min_momentum=0.7)),
        ("cos_ratio", dict(policy="CosineAnnealing", min_momentum_ratio=0.9)),
        ("cos_abs", dict(policy="CosineAnnealing", min_momentum=0.5)),
        ("linear", dict(policy="LinearAnnealing", min_momentum=0.99)),
    ]
    if not by_epoch:
        out += [
            ("cyclic", dict(policy="cyclic", cyclic_times=2)),
            ("cyclic_gamma_linear", dict(policy="cyclic", target_ratio=(0.9, 1.0), gamma=0.6,
                                         cyclic_times=3, step_ratio_up=0.2,
                                         anneal_strategy="linear")),
            ("onecycle", dict(policy="OneCycle")),
            ("onecycle_3phase_groups", dict(policy="OneCycle", three_phase=True, pct_start=0.2,
                                            base_momentum=[0.8, 0.85, 0.7],
                                            max_momentum=[0.9, 0.95, 0.99])),
            ("onecycle_long_3phase", dict(policy="OneCycle", three_phase=True, pct_start=0.4,
                                          anneal_strategy="linear")),
        ]
    return out


def _warmups():
    yield "none", {}
    for kind in ("constant", "linear", "exp"):
        yield kind, dict(warmup=kind, warmup_iters=250, warmup_ratio=0.85)


CASES = [
    pytest.param(opt, {**policy, **warm, "by_epoch": by_epoch},
                 id=f"{opt}-{pid}-{wid}-{'by_epoch' if by_epoch else 'by_iter'}")
    for opt in ("SGD", "Adam")
    for by_epoch in (True, False)
    for (pid, policy), (wid, warm) in itertools.product(_policies(by_epoch), _warmups())
]


@pytest.mark.parametrize("optimizer,momentum_config", CASES)
def test_momentum_policy_matches_torch_ref(optimizer, momentum_config):
    ours_lr, ours_m = optax_values(LR, momentum_config, RUN)
    ref_lr, ref_m = reference(LR, momentum_config, RUN, optimizer=optimizer)
    assert max_rel_dev(ours_lr, ref_lr) <= TOL
    dev = max_rel_dev(ours_m, ref_m)
    assert dev <= TOL, f"max relative deviation {dev:.3g}"


def test_momentum_under_iter_runner_moves_per_iteration():
    run = dict(runner_type="IterBasedRunner", max_iters=1000)
    cfg = dict(policy="CosineAnnealing", min_momentum_ratio=0.5)
    _, ours = optax_values(None, cfg, run)
    _, ref = reference(None, cfg, run)
    assert max_rel_dev(ours, ref) <= TOL
    assert ours[-1, 0] < 0.46  # annealed towards 0.45 over iterations
