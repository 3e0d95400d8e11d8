"""The mmcv 1.x config loader: _base_ chains, _delete_, {{_base_.x}}, overrides, errors."""

import os

import pytest

import optax_selfsup as oss
from optax_selfsup import cli

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures", "configs")
BASE_DIR = os.path.join(FIXTURES, "_base_")

PIPELINE = [dict(type="RandomResizedCrop", size=224, scale=(0.2, 1.0)),
            dict(type="RandomHorizontalFlip")]
EXPECTED_CHILD = {
    "model": {
        "type": "SimCLR",
        "backbone": {"type": "ResNet", "depth": 50, "norm_cfg": {"type": "BN"},
                     "out_indices": [4]},
        "neck": {"type": "NonLinearNeck", "in_channels": 2048, "hid_channels": 2048,
                 "out_channels": 128, "with_avg_pool": True},
        "head": {"type": "ContrastiveHead", "temperature": 0.1},
    },
    "data_source": "ImageNet",
    "img_norm_cfg": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    "train_pipeline": PIPELINE,
    "data": {"samples_per_gpu": 32, "workers_per_gpu": 4,
             "train": {"type": "MultiView", "num_views": [32, 2], "pipelines": [PIPELINE]}},
    "optimizer": {"type": "LARS", "lr": 0.3, "momentum": 0.9, "weight_decay": 1e-6},
    "optimizer_config": {},
    "lr_config": {"policy": "CosineAnnealing", "min_lr": 0.0, "warmup": "linear",
                  "warmup_iters": 10, "warmup_ratio": 1e-4, "warmup_by_epoch": True},
    "runner": {"type": "EpochBasedRunner", "max_epochs": 200},
    "checkpoint_config": {"interval": 10},
    "work_dir": f"{BASE_DIR}/work/default_runtime.py",
    "source_name": "default_runtime.py",
    "_scratch": 1,
    "norms": ([0.485, 0.456, 0.406], "x"),
    "new_block": {"_delete_": True, "a": 1},
}


def test_multi_level_bases_merge_like_mmcv():
    cfg = oss.load_config(os.path.join(FIXTURES, "selfsup", "algo", "simclr_child.py"))
    assert cfg == EXPECTED_CHILD
    assert isinstance(cfg["norms"], tuple)
    assert isinstance(cfg["data"]["train"]["pipelines"][0][0]["scale"], tuple)
    assert list(cfg) == list(EXPECTED_CHILD) or set(cfg) == set(EXPECTED_CHILD)


def test_loaded_config_builds(tmp_path):
    cfg = oss.load_config(os.path.join(FIXTURES, "selfsup", "algo", "simclr_child.py"))
    import jax.numpy as jnp
    tx = oss.build_optimizer(cfg, {"w": jnp.ones(3)}, steps_per_epoch=4)
    assert tx.init({"w": jnp.ones(3)}) is not None


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_missing_base_names_the_resolved_path(tmp_path):
    path = _write(tmp_path, "a.py", "_base_ = './nope/missing.py'\nx = 1\n")
    with pytest.raises(oss.ConfigError) as err:
        oss.load_config(path)
    assert str(tmp_path / "nope" / "missing.py") in str(err.value)
    assert "a.py" in str(err.value)


def test_cycle_of_bases(tmp_path):
    _write(tmp_path, "a.py", "_base_ = 'b.py'\n")
    path = _write(tmp_path, "b.py", "_base_ = ['a.py']\n")
    with pytest.raises(oss.ConfigError, match="cycle of _base_ files: .*b.py -> .*a.py -> "
                                              ".*b.py"):
        oss.load_config(path)


def test_dict_merged_into_a_non_dict(tmp_path):
    _write(tmp_path, "base.py", "optimizer = 'SGD'\n")
    path = _write(tmp_path, "child.py", "_base_ = 'base.py'\noptimizer = dict(lr=0.1)\n")
    with pytest.raises(oss.ConfigError, match=r"child.py: optimizer: a dict cannot be merged "
                                              r"into the base value 'SGD'.*_delete_=True"):
        oss.load_config(path)
    replaced = _write(tmp_path, "ok.py",
                      "_base_ = 'base.py'\noptimizer = dict(_delete_=True, lr=0.1)\n")
    assert oss.load_config(replaced)["optimizer"] == {"lr": 0.1}


def test_top_level_delete_is_refused(tmp_path):
    path = _write(tmp_path, "a.py", "_delete_ = True\nx = 1\n")
    with pytest.raises(oss.ConfigError, match="a.py: a top-level _delete_"):
        oss.load_config(path)


def test_missing_base_variable(tmp_path):
    _write(tmp_path, "base.py", "optimizer = dict(lr=0.1)\n")
    path = _write(tmp_path, "child.py", "_base_ = 'base.py'\nlr = {{_base_.optimizer.momentum}}\n")
    with pytest.raises(oss.ConfigError, match=r"child.py: \{\{_base_.optimizer.momentum\}\} "
                                              r"does not exist.*'momentum'"):
        oss.load_config(path)


def test_syntax_error_names_file_and_line(tmp_path):
    path = _write(tmp_path, "bad.py", "x = 1\ny = dict(a=1\nz = 2\n")
    with pytest.raises(oss.ConfigError, match=r"bad.py:2: syntax error"):
        oss.load_config(path)


def test_duplicate_keys_among_bases(tmp_path):
    _write(tmp_path, "a.py", "x = 1\n")
    _write(tmp_path, "b.py", "x = 2\n")
    path = _write(tmp_path, "c.py", "_base_ = ['a.py', 'b.py']\n")
    with pytest.raises(oss.ConfigError, match=r"\['x'\] appear in more than one _base_"):
        oss.load_config(path)


def test_reserved_key_and_unsupported_extension(tmp_path):
    with pytest.raises(oss.ConfigError, match="'filename' is reserved"):
        oss.load_config(_write(tmp_path, "r.py", "filename = 'x'\n"))
    with pytest.raises(oss.ConfigError, match="only .py, .json, .yaml, .yml"):
        oss.load_config(_write(tmp_path, "r.toml", "x = 1\n"))


def test_merge_options_follows_mmcv_dict_action():
    cfg = {"optimizer": {"type": "SGD", "lr": 0.1}, "lr_config": {"policy": "step"},
           "custom_hooks": [{"type": "A", "lr": 1}, {"type": "B"}]}
    out = oss.merge_options(cfg, [
        "optimizer.lr=0.5", "lr_config.warmup_iters=5", "optimizer.betas=(0.9,0.95)",
        "lr_config.step=[30, 40]", "optimizer.nesterov=true", "optimizer.amsgrad=False",
        "lr_config.min_lr=None", "runner.type=IterBasedRunner", "custom_hooks.0.lr=2",
        "model.x=[(1,2),[3,4]]", "work='a/b'"])
    assert out["optimizer"] == {"type": "SGD", "lr": 0.5, "betas": (0.9, 0.95),
                                "nesterov": True, "amsgrad": False}
    assert out["lr_config"] == {"policy": "step", "warmup_iters": 5, "step": [30, 40],
                                "min_lr": None}
    assert out["runner"] == {"type": "IterBasedRunner"}
    assert out["custom_hooks"] == [{"type": "A", "lr": 2}, {"type": "B"}]
    assert out["model"]["x"] == [(1, 2), [3, 4]]
    assert out["work"] == "a/b"
    assert cfg["optimizer"]["lr"] == 0.1  # the input is not modified
    with pytest.raises(oss.ConfigError, match="KEY=VALUE"):
        oss.merge_options(cfg, ["optimizer.lr"])


def test_cli_cfg_options_reach_the_schedules(capsys):
    config = os.path.join(os.path.dirname(HERE), "configs", "tutorial", "cyclic_lr_momentum.py")
    assert cli.main(["plot", config, "--steps-per-epoch", "5", "--cfg-options",
                     "runner.max_epochs=3", "lr_config.cyclic_times=2"]) == 0
    out = capsys.readouterr().out
    assert "over 15 iterations" in out


def test_deprecation_key_warns_and_is_removed(tmp_path):
    path = _write(tmp_path, "old.py", "_deprecation_ = dict(expected='new.py')\nx = 1\n")
    with pytest.warns(DeprecationWarning, match="Please use new.py"):
        assert oss.load_config(path) == {"x": 1}
