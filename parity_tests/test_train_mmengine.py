"""``optax-selfsup train`` on MMEngine configs (MMSelfSup 1.x, MMPretrain): the config fitted
onto the short run is checked against the real MMEngine Runner (``torch_ref.mmengine``).

- Every shipped 1.x recipe, fitted onto 2 x 10 iterations, still PASSes parity against
  MMEngine over the whole fitted run, and its lr still reaches the recipe's peak there.
- A warmup fitted down to one iteration is lengthened to two: MMEngine's ``LinearLR`` of one
  iteration never leaves ``start_factor`` (the chained cosine then continues from 1e-4 x lr).
- A cosine that began where its warmup ended still does after fitting (rounding to a
  short run could start it inside the warmup): MMEngine's lr peaks where the warmup ends.
- The lr the train command logs is the real MMEngine's on the config it wrote to config.json.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from test_recipes_mmengine import RECIPES

import optax_selfsup as oss
from optax_selfsup.cli import main
from optax_selfsup.training.run_length_mmengine import fit_mmengine_to_run

SIMCLR = "configs/mmselfsup1/selfsup/simclr/simclr_resnet50_16xb256-coslr-200e_in1k.py"
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def _mmengine_lr(cfg: dict, iters: int, steps_per_epoch: int) -> np.ndarray:
    """The lr in force at every iteration of the real MMEngine Runner, by parameter."""
    from optax_selfsup.demo import DEMO_MODEL, draw
    from optax_selfsup.demo_mmengine import DEMO_MODULES, _jax_order
    from torch_ref.mmengine import run_mmengine

    values, grads = draw(0, iters)
    values = {k: values[k] for k in _jax_order(list(values))}
    steps = [{k: grads[k][t] for k in DEMO_MODEL} for t in range(iters)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_mmengine(cfg, values, steps, steps_per_epoch=steps_per_epoch,
                           modules=DEMO_MODULES, dtype="float32", log_level="ERROR")
    return np.stack([run.lr[n] for n in values], axis=1)


def _peak_lr(cfg: dict) -> float:
    return float(cfg["optim_wrapper"]["optimizer"]["lr"])


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_fitted_recipe_passes_parity_over_the_whole_short_run(recipe):
    from optax_selfsup.demo import run_parity

    cfg = oss.load_config(os.path.join(CONFIGS, recipe))
    fitted, notes = fit_mmengine_to_run(cfg, 2, 10)
    assert notes  # every recipe's run is hundreds of epochs: something was fitted
    report = run_parity(fitted, 10, None)
    assert report.reached_end and report.iters == 20
    assert report.param <= 1e-5 and report.lr <= 1e-6, (report.param, report.lr)
    assert report.weight_decay <= 1e-6 and report.updates == report.ref_updates


def test_a_one_iteration_warmup_is_lengthened_so_mmengine_reaches_the_lr():
    cfg = oss.load_config(SIMCLR)  # warmup: 10 of 200 epochs -> 1 of 20 iterations
    fitted, notes = fit_mmengine_to_run(cfg, 1, 20)
    assert fitted["param_scheduler"][0]["end"] == 2
    assert any("lengthened to 2" in n for n in notes), notes
    lr = _mmengine_lr(fitted, 20, 20)
    assert lr.max() == pytest.approx(_peak_lr(cfg), rel=1e-6)  # reached at iteration 2
    # as fitted before the lengthening, MMEngine stays at start_factor x lr for the whole run
    short = [dict(fitted["param_scheduler"][0], end=1), fitted["param_scheduler"][1]]
    assert _mmengine_lr(dict(fitted, param_scheduler=short), 20, 20).max() < \
        1e-3 * _peak_lr(cfg)


WARMUP_THEN_COSINE = [r for r in sorted(RECIPES) if r.startswith("mmpretrain/")
                      and "simsiam" not in r]


@pytest.mark.parametrize("recipe", WARMUP_THEN_COSINE)
def test_the_cosine_still_begins_where_the_warmup_ends(recipe):
    cfg = oss.load_config(os.path.join(CONFIGS, recipe))
    warmup, cosine = cfg["param_scheduler"][:2]
    assert cosine["begin"] == warmup["end"] and warmup["type"] == "LinearLR"
    fitted, _ = fit_mmengine_to_run(cfg, 2, 3)  # 6 iterations: 10 of 300 epochs round to 0
    warmup, cosine = fitted["param_scheduler"][:2]
    assert cosine["begin"] == warmup["end"] == 2
    lr = _mmengine_lr(fitted, 6, 3)
    # the real MMEngine: every parameter's lr rises to its peak at the warmup's end, then falls
    np.testing.assert_allclose(lr[2], lr.max(axis=0), rtol=1e-6)
    assert np.all(lr[0] < lr[2]) and np.all(lr[5] < lr[2])


def test_train_logs_the_lr_of_the_real_mmengine_on_its_fitted_config(tmp_path, capsys):
    work_dir = str(tmp_path)
    argv = ["train", SIMCLR, "--work-dir", work_dir, "--epochs", "2", "--steps-per-epoch",
            "5", "--batch-size", "16", "--log-interval", "2", "--no-progress", "--no-probe",
            "--compile-cache", "none"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "note: param_scheduler[0] LinearLR" in out, out
    with open(os.path.join(work_dir, "config.json")) as f:
        fitted = json.load(f)["config"]
    with open(os.path.join(work_dir, "log.json")) as f:
        records = [json.loads(line) for line in f if '"train"' in line]
    ref = _mmengine_lr(fitted, 10, 5)
    assert len(records) == 6  # iterations 2, 4, 5 of both epochs
    for r in records:
        t = (r["epoch"] - 1) * 5 + r["iter"] - 1
        assert r["lr"] == pytest.approx(float(ref[t, 0]), rel=1e-6, abs=1e-12), r
    assert max(r["lr"] for r in records) > 0.5 * _peak_lr(fitted)


@pytest.mark.slow
def test_a_1x_config_without_an_optimizer_variable_checkpoints_and_resumes(tmp_path, capsys):
    """BEiT v2 has no top-level ``optimizer`` (only ``optim_wrapper.optimizer``): the run's
    checkpoints record it, and --resume checks it (CI-cheap: test_checkpoint_records.py)."""
    beit = "configs/mmpretrain/beitv2/beitv2_beit-base-p16_8xb256-amp-coslr-300e_in1k.py"
    argv = ["train", beit, "--model", "mae_vit", "--work-dir", str(tmp_path), "--epochs", "2",
            "--steps-per-epoch", "2", "--batch-size", "8", "--no-progress", "--no-probe",
            "--compile-cache", str(tmp_path / "cache")]
    assert main([*argv, "--stop-after", "1"]) == 0
    assert main([*argv, "--resume"]) == 0
    with open(tmp_path / "checkpoints" / "4" / "optimizer" / "optimizer.json") as f:
        assert json.load(f)["optimizer"] == "AdamW"
