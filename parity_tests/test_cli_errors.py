"""Bad input to the command line: one line on stderr naming the key, value, file or
argument, exit status 2, never a traceback; nothing computed (or written) first."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from optax_selfsup import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMCLR = os.path.join(ROOT, "configs", "selfsup", "simclr",
                      "simclr_resnet50_8xb32-coslr-200e_in1k.py")
MAE = os.path.join(ROOT, "configs", "selfsup", "mae", "mae_vit-base-p16_8xb512-coslr-400e_in1k.py")
CYCLIC = os.path.join(ROOT, "configs", "tutorial", "cyclic_lr_momentum.py")


def _opts(*options):
    return ["--cfg-options", *options]


def _setup(tmp):
    (tmp / "a_file").write_text("x")
    (tmp / "empty.py").write_text("")
    (tmp / "raises.py").write_text("optimizer = dict(type='SGD', lr=0.1)\nx = 1 / 0\n")
    (tmp / "latin1.py").write_bytes(b"# caf\xe9\noptimizer = dict(type='SGD', lr=0.1)\n")
    (tmp / "folder").mkdir()
    (tmp / "bad.yaml").write_text("optimizer: [1\n")


# (id, argv, fragments that the one-line message must contain); {tmp} is a scratch folder
CASES = [
    # --cfg-options into a list (mmcv's DictAction crashes with a TypeError / ValueError)
    ("list key a word", ["show", SIMCLR, *_opts("workflow.x=1")],
     ["'workflow.x=1'", "'workflow' is a list", "workflow.0"]),
    ("list key negative", ["show", SIMCLR, *_opts("workflow.-1=1")],
     ["'workflow.-1=1'", "no negative indices", "0..0"]),
    ("list item not a dict", ["show", SIMCLR, *_opts("workflow.0.b=1")],
     ["'workflow.0.b=1'", "workflow.0 is ('train', 1)", "tuple", "no key 'b'",
      "replace the whole list (workflow=[...])"]),
    ("list item replaced", ["show", SIMCLR, *_opts("workflow.0=1")],
     ["'workflow.0=1'", "workflow=[", "workflow.0.KEY=VALUE"]),
    ("into a number", ["show", SIMCLR, *_opts("lr_config.min_lr.x=1")],
     ["'lr_config.min_lr.x=1'", "lr_config.min_lr is 0.0 (float)", "no key 'x'"]),
    # a dict written as dict(...): RecursionError in mmcv's DictAction
    ("dict value", ["show", SIMCLR, *_opts("norm_cfg=dict(type=BN,requires_grad=True)")],
     ["norm_cfg=dict(", "norm_cfg.type=BN norm_cfg.requires_grad=True", "_delete_"]),
    ("dict in a list", ["show", SIMCLR, *_opts("custom_hooks=[dict(type=X,a=1)]")],
     ["custom_hooks=[dict(", "custom_hooks.0.type"]),
    ("braces", ["show", SIMCLR, *_opts("norm_cfg={'type':'BN'}")], ["norm_cfg=", "norm_cfg.KEY"]),
    ("call with commas", ["show", SIMCLR, *_opts("x=f(1,2)")], ["'f(1,2)'", "brackets"]),
    # a section of the wrong type: the builder says so
    ("optimizer a number", ["describe", SIMCLR, *_opts("optimizer=1")],
     ["optimizer=1 must be a dict", "got int"]),
    ("custom_hooks a string", ["describe", SIMCLR, *_opts("custom_hooks=abc")],
     ["custom_hooks must be a list", "'abc'"]),
    ("custom_hooks items", ["describe", SIMCLR, *_opts("custom_hooks=[1,2]")],
     ["custom_hooks[0] must be a dict", "got int: 1"]),
    ("runner a number", ["plot", SIMCLR, *_opts("runner=1")], ["runner must be a dict"]),
    # config files
    ("config missing", ["show", "{tmp}/nope.py"], ["nope.py", "looked"]),
    ("config a folder", ["show", "{tmp}/folder"], ["folder", "is a directory"]),
    ("config raises", ["show", "{tmp}/raises.py"], ["raises.py:2", "ZeroDivisionError"]),
    ("config not UTF-8", ["show", "{tmp}/latin1.py"], ["latin1.py", "UTF-8"]),
    ("config empty", ["describe", "{tmp}/empty.py"], ["no 'optimizer'"]),
    ("config empty path", ["show", ""], ["config path ''", "give a config file"]),
    ("config a device", ["show", "/dev/null"], ["/dev/null is not a regular file"]),
    ("YAML error on one line", ["show", "{tmp}/bad.yaml"], ["bad.yaml"]),
    # plot
    ("plot -o missing folder", ["plot", CYCLIC, "-o", "{tmp}/no/such/x.png"],
     ["-o", "no/such", "does not exist"]),
    ("plot -o a folder", ["plot", CYCLIC, "-o", "{tmp}/folder"], ["-o", "is a directory"]),
    ("plot -o no extension", ["plot", CYCLIC, "-o", "{tmp}/figure"], ["-o", "extension", "png"]),
    ("plot -o unknown format", ["plot", CYCLIC, "-o", "{tmp}/f.xyz"], ["'.xyz'", "png"]),
    ("plot -o under a file", ["plot", CYCLIC, "-o", "{tmp}/a_file/x.png"],
     ["-o", "a_file", "not a directory"]),
    ("plot huge run", ["plot", SIMCLR, *_opts("runner.max_epochs=100000000")],
     ["200000000 iterations", "at most", "--steps-per-epoch"]),
    ("plot unknown model", ["plot", CYCLIC, "--model", "resnet9000"], ["'resnet9000'", "'demo'"]),
    # parity
    ("parity huge --iters", ["parity", SIMCLR, "--steps-per-epoch", "100000000", "--iters",
                             "1000000000"], ["--iters", "at most"]),
    # train: checked before jax is imported and before anything is written
    ("work dir a file", ["train", SIMCLR, "--work-dir", "{tmp}/a_file"],
     ["--work-dir", "a_file", "is a file"]),
    ("work dir under a file", ["train", SIMCLR, "--work-dir", "{tmp}/a_file/run"],
     ["--work-dir", "a_file", "not a directory"]),
    ("work dir not writable", ["train", SIMCLR, "--work-dir", "/proc/optax_selfsup_run"],
     ["--work-dir", "/proc", "writ"]),
    ("resume nothing", ["train", SIMCLR, "--work-dir", "{tmp}/w", "--resume"],
     ["--resume", "no checkpoint", "checkpoints"]),
    ("image too small", ["train", SIMCLR, "--work-dir", "{tmp}/w", "--image-size", "6"],
     ["--image-size 6", "at least 8"]),
    ("mae image size", ["train", MAE, "--work-dir", "{tmp}/w", "--image-size", "10"],
     ["--image-size 10", "multiple of 4"]),
    ("dataset too large", ["train", SIMCLR, "--work-dir", "{tmp}/w", "--batch-size", "100000000"],
     ["--steps-per-epoch 20 x --batch-size 100000000", "GiB"]),
    ("work dir empty", ["train", SIMCLR, "--work-dir", ""], ["--work-dir is empty"]),
    ("compile cache empty", ["train", SIMCLR, "--work-dir", "{tmp}/w", "--compile-cache", ""],
     ["--compile-cache is empty"]),
    ("compile cache a file", ["train", SIMCLR, "--work-dir", "{tmp}/w", "--compile-cache",
                              "{tmp}/a_file"], ["--compile-cache", "a_file", "is a file"]),
    ("stop after", ["train", SIMCLR, "--work-dir", "{tmp}/w", "--stop-after", "3"],
     ["--stop-after", "1..2"]),
    ("train unknown model", ["train", SIMCLR, "--work-dir", "{tmp}/w", "--model", "moco"],
     ["'moco'", "simclr_resnet"]),
]


@pytest.mark.parametrize("argv, fragments", [pytest.param(a, f, id=i) for i, a, f in CASES])
def test_bad_input_is_one_line_with_exit_status_2(argv, fragments, tmp_path, capsys):
    _setup(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    before = sorted(os.listdir(tmp_path))
    start = time.perf_counter()
    assert cli.main(argv) == 2
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment.replace("{tmp}", str(tmp_path)) in err[0], (fragment, err[0])
    assert sorted(os.listdir(tmp_path)) == before  # nothing written
    assert elapsed < 5, f"failed after {elapsed:.1f}s: nothing slow may run before the check"


# argparse: (argv, fragment of its "error:" line)
ARGPARSE = [
    (["plot", CYCLIC, "--steps-per-epoch", "0"], "--steps-per-epoch: 0 is not a positive"),
    (["parity", SIMCLR, "--steps-per-epoch", "-3"], "--steps-per-epoch: -3 is not a positive"),
    (["parity", SIMCLR, "--iters", "0"], "--iters: 0 is not a positive"),
    (["parity", SIMCLR, "--param-tol", "-1"], "--param-tol: -1 is not a finite number >= 0"),
    (["parity", SIMCLR, "--hparam-tol", "nan"], "--hparam-tol: nan is not a finite"),
    (["parity", SIMCLR, "--seed", "-1"], "--seed: -1 is not an int in 0..4294967295"),
    (["train", SIMCLR, "--seed", "99999999999"], "--seed: 99999999999 is not an int in 0.."),
    (["train", SIMCLR, "--epochs", "0"], "--epochs: 0 is not a positive"),
    (["train", SIMCLR, "--batch-size", "x"], "--batch-size: 'x' is not a positive"),
    (["train", SIMCLR, "--log-interval", "-1"], "--log-interval: -1 is not a positive"),
    (["train", SIMCLR, "--checkpoint-interval", "0"], "--checkpoint-interval: 0 is not a pos"),
    (["train", SIMCLR, "--stop-after", "0"], "--stop-after: 0 is not a positive"),
    (["describe"], "the following arguments are required: config"),
]


@pytest.mark.parametrize("argv, fragment", ARGPARSE, ids=[" ".join(a[:1] + a[2:])
                                                          for a, _ in ARGPARSE])
def test_bad_arguments_are_argparse_errors(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err.strip().splitlines()[-1], err


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    from optax_selfsup.cli import show

    def boom(args):
        raise RuntimeError("something nobody foresaw\nsecond line")

    monkeypatch.setattr(show, "run", boom)
    assert cli.main(["show", SIMCLR]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: RuntimeError: something nobody foresaw (an unexpected error; run "
                   "again with --debug for the traceback)"]
    for argv in (["--debug", "show", SIMCLR], ["show", SIMCLR, "--debug"]):
        with pytest.raises(RuntimeError, match="nobody foresaw"):
            cli.main(argv)


def test_debug_re_raises_config_errors(capsys):
    import optax_selfsup as oss

    with pytest.raises(oss.ConfigError, match="'workflow' is a list"):
        cli.main(["show", SIMCLR, "--debug", "--cfg-options", "workflow.x=1"])


def _run(argv, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "optax_selfsup", *argv], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": ROOT}, **kw)


def test_resume_without_checkpoint_fails_at_once_and_leaves_nothing(tmp_path):
    """It used to import jax, build the model, compile, then fail after 11-18 s, leaving
    WORK_DIR/jax_cache/ behind."""
    start = time.perf_counter()
    result = _run(["train", SIMCLR, "--work-dir", "w", "--resume"], cwd=tmp_path)
    elapsed = time.perf_counter() - start
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (f"error: --resume: no checkpoint to continue in "
                                     f"{tmp_path / 'w' / 'checkpoints'} (the folder does not "
                                     f"exist); a run saves its checkpoints there")
    assert os.listdir(tmp_path) == []
    (tmp_path / "w" / "checkpoints").mkdir(parents=True)
    result = _run(["train", SIMCLR, "--work-dir", "w", "--resume"], cwd=tmp_path)
    assert result.returncode == 2 and "(it holds no saved step)" in result.stderr
    assert os.listdir(tmp_path / "w") == ["checkpoints"]
    assert os.listdir(tmp_path / "w" / "checkpoints") == []
    assert elapsed < 4, f"{elapsed:.1f}s"


def test_no_traceback_on_the_console_for_known_bad_inputs(tmp_path):
    for argv in (["show", SIMCLR, "--cfg-options", "a=dict(b=1,c=2)"],
                 ["plot", CYCLIC, "-o", str(tmp_path / "missing" / "x.png")]):
        result = _run(argv, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in lines[0]


def test_interrupt_is_one_line(monkeypatch, capsys):
    from optax_selfsup.cli import show

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(show, "run", interrupted)
    assert cli.main(["show", SIMCLR]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_quick_checkpoint_listing_agrees_with_orbax(tmp_path):
    """The pre-run check reads step folders without orbax; orbax's own listing agrees."""
    import numpy as np

    import optax_selfsup as oss
    from optax_selfsup.training.checkpoints import saved_steps

    directory = str(tmp_path / "checkpoints")
    assert saved_steps(directory) == [] and oss.latest_step(directory) is None
    tree = {"w": np.zeros(3, np.float32)}
    for step in (2, 10):
        oss.save_checkpoint(directory, step, params=tree, opt_state=tree)
    (tmp_path / "checkpoints" / "12.orbax-checkpoint-tmp-1").mkdir()  # an unfinished save
    (tmp_path / "checkpoints" / "7").write_text("")  # a file, not a step
    assert saved_steps(directory) == [2, 10]
    assert oss.latest_step(directory) == 10
