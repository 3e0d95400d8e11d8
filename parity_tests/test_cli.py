"""The command line: plot a config's schedules against torch_ref."""

import os

from optax_selfsup import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_plot_prints_deviation_and_writes_png(tmp_path, capsys):
    out = tmp_path / "schedule.png"
    config = os.path.join(ROOT, "configs", "cyclic_lr_momentum_tutorial.py")
    assert cli.main(["plot", config, "--steps-per-epoch", "30", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lr: max |optax_selfsup - torch_ref|" in text and "momentum:" in text
    for line in text.splitlines()[:2]:
        rel = float(line.split("(")[1].split()[0])
        assert rel < 1e-6
    assert out.stat().st_size > 10_000


def test_plot_reports_config_errors_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("lr_config = dict(policy='Cosine')\nrunner = dict(type='EpochBasedRunner',"
                   " max_epochs=2)\noptimizer = dict(type='SGD', lr=0.1)\n")
    assert cli.main(["plot", str(bad), "--steps-per-epoch", "3"]) == 2
    assert "lr_config.policy='Cosine'" in capsys.readouterr().err
