"""The command line on MMEngine configs (MMSelfSup 1.x, MMPretrain): describe prints MMEngine's
param groups, parity and plot compare with the real MMEngine Runner, and a missing reference
is one line naming the extra that installs it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from test_recipes_mmengine import RECIPES

from optax_selfsup import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMSIAM = os.path.join("configs", "mmpretrain", "simsiam",
                       "simsiam_resnet50_8xb32-coslr-100e_in1k.py")
MAE_FT = os.path.join("configs", "mmpretrain", "mae", "benchmarks",
                      "vit-base-p16_8xb128-coslr-100e_in1k.py")
SPARK = os.path.join("configs", "mmpretrain", "spark",
                     "spark_sparse-resnet50_8xb512-amp-coslr-800e_in1k.py")


def test_describe_prints_the_groups_in_mmengine_order(capsys):
    from optax_selfsup import demo, demo_mmengine, load_config
    from torch_ref.mmengine import run_mmengine

    assert cli.main(["describe", MAE_FT]) == 0
    header, columns, *rows = capsys.readouterr().out.splitlines()
    assert header.startswith("27 param group(s) of 27 parameters, as "
                             "LearningRateDecayOptimWrapperConstructor builds them; OptimWrapper")
    keys = columns.split()
    assert keys[:3] == ["name", "group", "lr"] and {"layer_id", "lr_scale"} <= set(keys)
    table = [dict(zip(keys, r.split())) for r in rows]
    assert [int(r["group"]) for r in table] == list(range(27))
    # the same groups, in the same order, as the real constructor builds them on the demo tree
    values = {k: np.zeros(s, np.float32) for k, s in demo.DEMO_MODEL.items()}
    values = {k: values[k] for k in demo_mmengine._jax_order(list(values))}
    run = run_mmengine(load_config(MAE_FT), values, [{}], steps_per_epoch=1,
                       modules=demo_mmengine.DEMO_MODULES, log_level="ERROR")
    order = sorted(run.groups, key=lambda n: run.param_index[n])
    owner = lambda name: name.rpartition(".")[0]
    # modules in the constructor's order (a module's own parameters before its submodules');
    # within a module a pytree is ordered by name, torch by registration (weight, bias)
    assert [owner(r["name"]) for r in table] == [owner(n) for n in order]
    assert sorted(r["name"] for r in table) == sorted(order)
    for r in table:
        group = run.groups[r["name"]]
        assert float(r["lr"]) == pytest.approx(group["lr"], rel=1e-5), r["name"]
        assert float(r["weight_decay"]) == pytest.approx(group["weight_decay"]), r["name"]
        assert int(r["layer_id"]) == group["layer_id"], r["name"]


MMENGINE_CONFIGS = sorted(os.path.join("configs", r) for r in RECIPES)


@pytest.mark.parametrize("config", MMENGINE_CONFIGS)
def test_describe_gives_the_groups_of_the_real_constructor_on_every_1x_recipe(config, capsys):
    """Every shipped 1.x recipe: describe's lr and weight decay of every parameter are those
    of the group MMEngine's constructor (with MMPretrain's) builds on the demo tree."""
    from optax_selfsup import demo, demo_mmengine, load_config
    from torch_ref.mmengine import run_mmengine

    assert cli.main(["describe", config]) == 0
    header, columns, *rows = capsys.readouterr().out.splitlines()
    cfg = load_config(config)
    assert header.endswith(", " + cfg["optim_wrapper"]["optimizer"]["type"]), header
    keys = columns.split()
    table = {r.split()[0]: dict(zip(keys, r.split())) for r in rows if r.split()}
    values = {k: np.zeros(s, np.float32) for k, s in demo.DEMO_MODEL.items()}
    values = {k: values[k] for k in demo_mmengine._jax_order(list(values))}
    grads = [{k: np.ones_like(v) for k, v in values.items()}]  # AMP needs a gradient
    run = run_mmengine(cfg, values, grads, steps_per_epoch=1,
                       modules=demo_mmengine.DEMO_MODULES, log_level="ERROR")
    assert set(table) == set(values)
    for name, row in table.items():
        group = run.groups[name]
        assert float(row["lr"]) == pytest.approx(group["lr"], rel=1e-5), name
        assert float(row["weight_decay"]) == pytest.approx(group["weight_decay"]), name


@pytest.mark.slow
@pytest.mark.parametrize("config", MMENGINE_CONFIGS)
def test_plot_runs_on_every_1x_recipe(config, tmp_path, capsys):
    out = tmp_path / "plot.png"
    assert cli.main(["plot", config, "--steps-per-epoch", "1", "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line in lines[:3]:
        assert float(line.split("(")[1].split()[0]) < 1e-6, line
    assert out.stat().st_size > 10_000


def test_parity_reports_weight_decay_and_fails_above_the_tolerance(capsys):
    argv = ["parity", SIMSIAM, "--steps-per-epoch", "1", "--iters", "30"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("against MMEngine 0.10.7 Runner (MMPretrain 1.2.0)")
    assert "ran iterations 0..29, a prefix: NOT the end of the run (100 iterations" in out
    assert "weight_decay: 0 <= 1e-06" in out and out.rstrip().endswith("PASS")
    assert cli.main([*argv, "--hparam-tol", "0"]) == 1
    out = capsys.readouterr().out
    assert "lr: " in out and "> 0" in out and out.rstrip().endswith("FAIL")


def test_parity_needs_the_batch_size_for_an_enabled_auto_scale_lr(capsys):
    argv = ["parity", SIMSIAM, "--steps-per-epoch", "1", "--iters", "5",
            "--cfg-options", "auto_scale_lr.base_batch_size=256", "auto_scale_lr.enable=True"]
    assert cli.main(argv) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert cli.main([*argv, "--batch-size", "512"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("PASS")


@pytest.mark.parametrize("hidden", ["cv2", "mmpretrain"])
def test_a_missing_mmengine_reference_is_one_line_naming_the_extra(hidden):
    """torch_ref.mmengine needs cv2 (MMEngine's hooks import it) and MMPretrain 1.2.0's files:
    without either, parity of an MMEngine config stops before computing, in one line."""
    hide = ("sys.modules['cv2'] = None" if hidden == "cv2" else
            "import importlib.metadata as m\n_v = m.version\n"
            "def version(name):\n    if name == 'mmpretrain':\n"
            "        raise m.PackageNotFoundError(name)\n    return _v(name)\n"
            "m.version = version")
    code = (f"import sys\n{hide}\nfrom optax_selfsup.cli import main\n"
            f"sys.exit(main(['parity', {SIMSIAM!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    want = "opencv-python-headless (not installed)" if hidden == "cv2" else \
        "mmpretrain (not installed)"
    assert len(lines) == 1 and want in lines[0], lines
    assert lines[0].endswith("pip install 'optax_selfsup[mmengine-ref]'")


def test_plot_draws_lr_momentum_and_weight_decay_of_every_group(tmp_path, capsys):
    out = tmp_path / "spark.png"
    argv = ["plot", SPARK, "--steps-per-epoch", "1", "--cfg-options",
            "train_cfg.max_epochs=60", "-o", str(out)]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["lr", "momentum", "weight_decay"]
    for line in lines[:3]:
        assert "max |optax_selfsup - MMEngine|" in line and "3 group(s)" in line
        assert float(line.split("(")[1].split()[0]) < 1e-6
    assert out.stat().st_size > 10_000


def test_plot_of_an_mmengine_config_refuses_a_run_the_runner_cannot_draw_quickly(capsys):
    assert cli.main(["plot", SPARK, "--steps-per-epoch", "100"]) == 2
    err = capsys.readouterr().err
    assert "80000 iterations" in err and "at most 20000" in err
