"""The command line: plot a config's schedules against torch_ref."""

import os

from optax_selfsup import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_plot_prints_deviation_and_writes_png(tmp_path, capsys):
    out = tmp_path / "schedule.png"
    config = os.path.join(ROOT, "configs", "tutorial", "cyclic_lr_momentum.py")
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


def test_show_prints_the_merged_config(capsys):
    config = os.path.join(ROOT, "configs", "selfsup", "mocov2",
                          "mocov2_resnet50_8xb32-coslr-200e_in1k.py")
    assert cli.main(["show", config, "--cfg-options", "optimizer.lr=0.5"]) == 0
    out = capsys.readouterr().out
    assert "'lr': 0.5" in out and "'CosineAnnealing'" in out


def test_parity_command_reports_float32_agreement(capsys):
    config = os.path.join(ROOT, "configs", "selfsup", "simclr",
                          "simclr_resnet50_8xb32-coslr-200e_in1k.py")
    assert cli.main(["parity", config, "--steps-per-epoch", "3", "--iters", "40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    param_dev = float(lines[0].split("= ")[1].split()[0])
    lr_dev = float(lines[1].split("= ")[1])
    assert param_dev < 1e-5 and lr_dev < 1e-6
