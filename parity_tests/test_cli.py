"""The command line: fast --help, describe, plot, parity verdicts, missing extras."""

import os
import subprocess
import sys
import time

import pytest

from optax_selfsup import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMCLR = os.path.join(ROOT, "configs", "selfsup", "simclr",
                      "simclr_resnet50_8xb32-coslr-200e_in1k.py")
BYOL = os.path.join(ROOT, "configs", "selfsup", "byol",
                    "byol_resnet50_16xb256-accum16-coslr-200e_in1k.py")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("command", [None, *cli.COMMANDS])
def test_help_is_fast_and_imports_neither_jax_nor_torch(command):
    argv = ["--help"] if command is None else [command, "--help"]
    start = time.perf_counter()
    result = _python(
        "import sys\nfrom optax_selfsup.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('jax', 'torch', 'matplotlib', 'numpy') if m in sys.modules))")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("[]"), result.stdout[-200:]
    assert elapsed < 1.5, f"--help took {elapsed:.2f}s"  # ~0.1 s unloaded; shared CI cores
    if command is not None:  # every argument has a help text
        parser = cli.build_parser()
        sub = parser._subparsers._group_actions[0].choices[command]
        assert all(a.help for a in sub._actions), [a.dest for a in sub._actions if not a.help]


def test_lazy_package_exports_every_name():
    result = _python(
        "import sys, optax_selfsup as oss\nassert 'jax' not in sys.modules\n"
        "missing = [n for n in oss.__all__ if getattr(oss, n, None) is None]\n"
        "from optax_selfsup import build_optimizer, describe\n"
        "print(missing, oss.build_optimizer is build_optimizer, 'LARS' in oss.OPTIMIZERS)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "True", "True"]


@pytest.mark.parametrize("extra, argv", [
    ("torch", ["parity", SIMCLR]),
    ("matplotlib", ["plot", SIMCLR, "-o", "x.png"]),
])
def test_missing_extra_is_one_line_not_a_traceback(extra, argv):
    result = _python(f"import sys\nsys.modules[{extra!r}] = None\n"
                     "from optax_selfsup.cli import main\n"
                     f"sys.exit(main({argv!r}))")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    want = "plot" if extra == "matplotlib" else "torch"
    assert len(lines) == 1 and f"pip install 'optax_selfsup[{want}]'" in lines[0], lines


def test_describe_table_and_unknown_model(capsys):
    assert cli.main(["describe", BYOL]) == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["name", "lr", "weight_decay"]
    bn = next(r for r in rows if r.startswith("backbone.bn1.weight")).split()
    conv = next(r for r in rows if r.startswith("backbone.conv1.weight")).split()
    assert bn[1:5] == ["4.8", "0", "0.9", "True"] and conv[1:5] == ["4.8", "1e-06", "0.9", "False"]
    assert cli.main(["describe", BYOL, "--model", "resnet9000"]) == 2
    err = capsys.readouterr().err
    assert "'resnet9000'" in err and "'demo'" in err


def test_plot_prints_deviation_and_writes_png(tmp_path, capsys):
    out = tmp_path / "schedule.png"
    config = os.path.join(ROOT, "configs", "tutorial", "cyclic_lr_momentum.py")
    assert cli.main(["plot", config, "--steps-per-epoch", "10", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("lr: max |optax_selfsup - torch_ref|")
    assert lines[1].startswith("momentum:")
    for line in lines[:2]:
        assert float(line.split("(")[1].split()[0]) < 1e-6
    assert out.stat().st_size > 10_000


def test_plot_title_notes_accumulation_and_marks_every_kth_epoch():
    from optax_selfsup import Clock, load_config
    from optax_selfsup.cli import plot

    cfg = load_config(BYOL)
    clock = Clock.from_runner_config(cfg["runner"], 3)
    warmup_end, epochs, every = plot._markers(cfg, clock)
    assert warmup_end == 30 and every == 5 and epochs[:2] == [5, 10] and len(epochs) == 39

    class Args:
        config, steps_per_epoch = BYOL, None

    title = plot._title(Args, cfg, clock)
    assert "LARS lr=4.8" in title and "one update per 16 iterations" in title


def test_plot_reports_config_errors_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("lr_config = dict(policy='Cosine')\nrunner = dict(type='EpochBasedRunner',"
                   " max_epochs=2)\noptimizer = dict(type='SGD', lr=0.1)\n")
    assert cli.main(["plot", str(bad), "--steps-per-epoch", "3"]) == 2
    assert "lr_config.policy='Cosine'" in capsys.readouterr().err


def test_show_prints_the_merged_config(capsys):
    config = os.path.join(ROOT, "configs", "selfsup", "mocov2",
                          "mocov2_resnet50_8xb32-coslr-200e_in1k.py")
    assert cli.main(["show", config, "--cfg-options", "optimizer.lr=0.5"]) == 0
    out = capsys.readouterr().out
    assert "'lr': 0.5" in out and "'CosineAnnealing'" in out


def _deviation(text, name):
    line = next(x for x in text.splitlines() if x.startswith(name + ":"))
    return float(line.split()[1])


def test_parity_gradient_cumulative_spelling_passes_with_lr_checked(tmp_path, capsys):
    """mmcv's GradientCumulativeOptimizerHook(cumulative_iters=k): updates every k, lr compared
    at every iteration (it used to report a false 0.976 lr deviation)."""
    config = tmp_path / "byol_gcoh.py"
    config.write_text(f"_base_ = {BYOL!r}\noptimizer_config = dict(_delete_=True, "
                      "type='GradientCumulativeOptimizerHook', cumulative_iters=4)\n"
                      "runner = dict(max_epochs=10)\n")
    assert cli.main(["parity", str(config)]) == 0
    text = capsys.readouterr().out
    assert "compressed run: 10 epochs x 60 iterations" in text
    assert "one per 4 iterations (accumulation)" in text
    assert "lr warmup ends at iteration 600" in text  # 10 warmup epochs: the whole run
    assert _deviation(text, "params") < 1e-5 and _deviation(text, "lr") < 1e-6
    assert text.rstrip().endswith("PASS")


def test_parity_fails_above_the_stated_tolerance(capsys):
    config = os.path.join(ROOT, "configs", "misc", "sgd_accum8-remainder_iter.py")
    assert cli.main(["parity", config, "--param-tol", "0", "--hparam-tol", "0"]) == 1
    text = capsys.readouterr().out
    assert "after 6 (remainder)" in text and "ran iterations 0..69, the whole run" in text
    assert text.rstrip().endswith("FAIL") and "> 0" in text
