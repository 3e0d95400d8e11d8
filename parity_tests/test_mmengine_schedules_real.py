"""MMEngine ``param_scheduler`` schedules of the real configs and over long runs.

Every distinct ``param_scheduler`` + ``train_cfg`` (+ ``SimSiamHook``) combination of the
MMSelfSup 1.0.0 / MMPretrain 1.2.0 configs, against MMEngine's own schedulers
(``mmengine_sched_ref``): one per structure in the quick suite, all of them with ``-m slow``;
and float32 over 1e5 (quick) / 1e6 (slow) iterations.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from mmengine_sched_ref import check, reference_values

from optax_selfsup.schedules.mmengine import parse_param_scheduler
from optax_selfsup.schedules.mmengine_loop import HookWrite, TrainLoop

# --- every param_scheduler + train_cfg of the real configs -------------------------------


def real_combinations():
    """``[(id, param_scheduler, train_cfg, simsiam_hook, steps_per_epoch, structure)]``: the
    distinct combinations of MMSelfSup 1.0.0 / MMPretrain 1.2.0 configs the Runner can train
    (train_cfg with exactly one of type / by_epoch), each with a data loader length that fits
    its iteration-valued begin/end (warmups of 500-5000
    iterations next to an epoch loop) while keeping the run short."""
    import json

    from upstream_data import generation, load_views

    combos = {}
    for rel, view in load_views().items():
        if generation(rel) != "1.x" or "error" in view or view.get("param_scheduler") is None:
            continue
        tc = view.get("train_cfg") or {}
        if ("type" in tc) == ("by_epoch" in tc):
            continue  # the Runner refuses it (or there is nothing to train)
        tc = {k: v for k, v in tc.items() if k in ("type", "by_epoch", "max_epochs",
                                                    "max_iters")}
        hooks = [h for h in view.get("custom_hooks") or [] if h.get("type") == "SimSiamHook"]
        key = json.dumps([view["param_scheduler"], tc, hooks], sort_keys=True)
        combos.setdefault(key, rel)
    out = []
    for key, rel in combos.items():
        ps, tc, hooks = json.loads(key)
        scheds = ps if isinstance(ps, list) else [ps]
        epochs = tc["max_epochs"]
        bound = max([s.get(k, 0) for s in scheds if not s.get("by_epoch", True)
                     for k in ("begin", "end")] + [0])
        L = max(2, math.ceil(1.25 * bound / epochs))
        structure = json.dumps([[(s["type"], s.get("by_epoch", True),
                                  s.get("convert_to_iter_based", False), sorted(s))
                                 for s in scheds], sorted(tc), bool(hooks)])
        out.append((rel, ps, tc, hooks[0] if hooks else None, L, structure))
    return out


REAL = real_combinations()
SHORTEST = {}
for _combo in sorted(REAL, key=lambda c: c[2]["max_epochs"] * c[4]):
    SHORTEST.setdefault(_combo[5], _combo)


def check_real(combo):
    rel, ps, tc, hook, L, _ = combo
    params = sorted({"weight_decay" if s["type"] == "CosineAnnealingWeightDecay" else
                     s.get("param_name", "lr") for s in (ps if isinstance(ps, list) else [ps])})
    bases = dict(lr=[0.1, 0.0375, 0.2], weight_decay=[0.05, 0.0, 0.3], momentum=[0.9] * 3)
    writes = [] if hook is None else [HookWrite.simsiam(hook, (False, False, True))]
    loop = TrainLoop.from_train_cfg(tc, L)
    scheds, worst = check(ps, epochs=loop.max_epochs, L=L, bases=bases, params=params,
                          writes=writes)
    for p in params:
        assert scheds.for_param(p).table_rows == 0, (rel, p)
    return worst


@pytest.mark.parametrize("combo", sorted(SHORTEST.values()), ids=lambda c: c[0])
def test_real_config_schedules_one_per_structure(combo):
    check_real(combo)


@pytest.mark.slow
@pytest.mark.parametrize("combo", REAL, ids=lambda c: c[0])
def test_real_config_schedules_every_combination(combo):
    check_real(combo)


# --- long runs ---------------------------------------------------------------------------


def long_run(ps, n, epochs=100):
    L = n // epochs
    base = [0.1, 3e-4]
    ref = reference_values(ps, by_epoch_loop=True, steps_per_epoch=L, max_epochs=epochs,
                           bases=dict(lr=base), params=("lr",))["lr"]
    lr = parse_param_scheduler(ps, TrainLoop.epochs(epochs, L)).for_param("lr")
    got = np.asarray(jax.jit(lr)(np.arange(n), np.asarray(base, np.float32)), np.float64)
    err = np.abs(got - ref) / np.asarray(base)
    assert err.max() <= 1e-6, f"{err.max():.3g} at {np.unravel_index(err.argmax(), err.shape)}"
    return got, ref


def test_float32_cosine_over_1e5_iterations_keeps_the_tail():
    # a float32 recursion drifts ~1e-5 here; a float32 1 + cos(pi n/T) gives 0 at the end
    got, ref = long_run([dict(type="CosineAnnealingLR", by_epoch=False)], 100_000)
    tail = slice(-1000, None)
    rel = np.abs(got[tail] - ref[tail]) / ref[tail]
    assert rel.max() <= 1e-5 and ref[-1, 0] == pytest.approx(0.1 * math.sin(math.pi / 2e5) ** 2)


LONG = {
    "cosine": [dict(type="CosineAnnealingLR", by_epoch=False, eta_min=1e-6)],
    "linear+cosine": [dict(type="LinearLR", start_factor=1e-4, by_epoch=True, end=10,
                           convert_to_iter_based=True),
                      dict(type="CosineAnnealingLR", by_epoch=True, begin=10, eta_min=1e-5,
                           convert_to_iter_based=True)],
    "poly": [dict(type="PolyLR", power=2.0, eta_min=1e-5, by_epoch=False)],
    "multistep": [dict(type="MultiStepLR", milestones=[30, 60, 90], by_epoch=True,
                       convert_to_iter_based=True)],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LONG))
def test_float32_million_iterations(name):
    long_run(LONG[name], 1_000_000)
