"""``optax-selfsup train``: the loop, its log, checkpoints, bit-identical resume, the probe.

Every run goes through ``cli.main(["train", ...])`` as a user's would, on tiny
settings (a few iterations of 16 images) except the probe run.
"""

import json
import math
import os

import jax
import numpy as np
import pytest

import optax_selfsup as oss
from optax_selfsup.cli import main
from optax_selfsup.training.run_length import fit_to_run

SIMCLR = "configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"
BYOL = "configs/selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py"
MAE = "configs/selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py"
TINY = ["--steps-per-epoch", "3", "--batch-size", "16", "--log-interval", "2", "--no-progress",
        "--no-probe"]
# the probe run: 2 x 8 iterations of 32 images; the resume test repeats it in two parts
PROBE_RUN = ["--epochs", "2", "--steps-per-epoch", "8", "--batch-size", "32", "--log-interval",
             "4", "--no-progress"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One JAX compilation cache for every run of this file: a repeated run skips compiling."""
    return ["--compile-cache", str(tmp_path_factory.mktemp("jax_cache"))]


def _records(work_dir):
    with open(os.path.join(work_dir, "log.json")) as f:
        return [json.loads(line) for line in f]


def _restore_raw(work_dir, step):
    import orbax.checkpoint as ocp

    path = os.path.join(work_dir, "checkpoints", str(step))
    with ocp.StandardCheckpointer() as ckptr:
        return {item: ckptr.restore(os.path.join(path, item)) for item in ("params", "opt_state")}


@pytest.fixture(scope="module")
def simclr_run(tmp_path_factory, cache):
    work_dir = str(tmp_path_factory.mktemp("simclr_full"))
    assert main(["train", SIMCLR, "--work-dir", work_dir] + PROBE_RUN + cache) == 0
    return work_dir


def test_simclr_run_writes_the_log_and_checkpoints(simclr_run):
    records = _records(simclr_run)
    assert [(r["mode"], r["epoch"], r["iter"]) for r in records] == [
        ("train", 1, 4), ("train", 1, 8), ("train", 2, 4), ("train", 2, 8), ("val", 2, 1000)]
    for r in records[:-1]:
        assert {"lr", "momentum", "grad_norm", "loss", "time", "data_time"} <= set(r)
        assert math.isfinite(r["loss"]) and r["grad_norm"] > 0 and r["momentum"] == 0.9 or \
            abs(r["momentum"] - 0.9) < 1e-7
    # the lr logged at (epoch, iter) is the config's schedule, fitted onto 2 x 8 iterations,
    # at global iteration (epoch - 1) * 8 + iter - 1
    cfg, _ = fit_to_run(oss.load_config(SIMCLR), 2, 8)
    schedule = oss.lr_schedule(cfg["lr_config"], 0.3, steps_per_epoch=8, max_epochs=2)
    for r in records[:-1]:
        expected = float(schedule((r["epoch"] - 1) * 8 + r["iter"] - 1))
        assert r["lr"] == pytest.approx(expected, rel=1e-6)
    # warmup of 10 of 200 epochs -> 5% of 16 iterations -> 1 iteration (warmup_by_epoch off)
    assert cfg["lr_config"]["warmup_iters"] == 1 and not cfg["lr_config"]["warmup_by_epoch"]
    assert sorted(os.listdir(os.path.join(simclr_run, "checkpoints"))) == ["16", "8"]
    with open(os.path.join(simclr_run, "config.json")) as f:
        assert json.load(f)["model"] == "simclr_resnet"


def test_resume_continues_bit_for_bit(simclr_run, tmp_path, cache):
    work_dir = str(tmp_path)
    args = ["train", SIMCLR, "--work-dir", work_dir] + PROBE_RUN + cache
    assert main(args + ["--stop-after", "1"]) == 0
    assert sorted(os.listdir(os.path.join(work_dir, "checkpoints"))) == ["8"]
    assert main(args + ["--resume"]) == 0
    resumed, full = _restore_raw(work_dir, 16), _restore_raw(simclr_run, 16)
    leaves_a, tree_a = jax.tree.flatten(resumed)
    leaves_b, tree_b = jax.tree.flatten(full)
    assert tree_a == tree_b and len(leaves_a) > 50
    for a, b in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the resumed run appended epoch 2's records and the probe, identical to the
    # uninterrupted run's
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("time", "data_time")} for r in rs]
    assert strip(_records(work_dir)) == strip(_records(simclr_run))


def test_resume_refuses_other_settings_and_fresh_runs_refuse_old_checkpoints(
        simclr_run, capsys, cache):
    base = ["train", SIMCLR, "--work-dir", simclr_run] + PROBE_RUN + cache
    assert main(base) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(base + ["--resume", "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "seed: checkpoint 0, now 1" in err
    assert main(base + ["--resume", "--cfg-options", "optimizer.lr=0.1"]) == 2
    assert "config" in capsys.readouterr().err


def test_unknown_model_is_a_config_error(tmp_path, capsys):
    mocov2 = "configs/selfsup/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py"
    assert main(["train", mocov2, "--work-dir", str(tmp_path)] + TINY) == 2
    err = capsys.readouterr().err
    assert "SimCLR" in err and "BYOL" in err and "MAE" in err and "--model" in err
    assert main(["train", SIMCLR, "--model", "resnet", "--work-dir", str(tmp_path)] + TINY) == 2
    assert "simclr_resnet" in capsys.readouterr().err


@pytest.mark.parametrize("config, model", [(BYOL, "byol_resnet"), (MAE, "mae_vit")])
def test_byol_and_mae_configs_train(config, model, tmp_path, cache):
    work_dir = str(tmp_path)
    # BYOL accumulates 16 micro-batches; 2 x 3 iterations end on the remainder flush
    assert main(["train", config, "--epochs", "2", "--work-dir", work_dir] + TINY + cache) == 0
    records = _records(work_dir)
    assert len(records) == 4 and all(math.isfinite(r["loss"]) for r in records)
    with open(os.path.join(work_dir, "config.json")) as f:
        assert json.load(f)["model"] == model
    if model == "mae_vit":  # AdamW: momentum is betas[0]
        assert all(abs(r["momentum"] - 0.9) < 1e-7 for r in records)
    full = _restore_raw(work_dir, 6)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(full["params"]))


def test_simclr_probe_is_above_chance(simclr_run):
    probe = _records(simclr_run)[-1]
    assert probe["mode"] == "val" and probe["chance"] == 10.0
    assert probe["linear_probe_top1"] > 25.0, probe
