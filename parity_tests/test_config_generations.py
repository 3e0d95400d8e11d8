"""Both config generations through one ``oss.load_config``: chosen from the keys, loaded by
each generation's faithful loader, and the files neither loader takes refused by name.

The reference for the MMEngine generation is MMEngine's own ``Config``: every real config
of MMSelfSup 0.11.0, MMSelfSup 1.0.0 and MMPretrain 1.2.0 that MMEngine loads (the views
in parity_tests/data/upstream_views.json, written by tools/upstream_configs.py) loads
here to the same optimisation keys.
"""

import os
import textwrap

import pytest

import optax_selfsup as oss

from upstream_data import config_path, load_views

# every key a reader of either generation looks at
OPTIMISATION_KEYS = ("optimizer", "optimizer_config", "lr_config", "momentum_config", "runner",
                     "fp16", "custom_hooks", "optim_wrapper", "param_scheduler", "train_cfg",
                     "default_scope", "auto_scale_lr")


def _loadable():
    return {rel: view for rel, view in load_views().items()
            if "error" not in view and not view.get("lazy_import")}


def test_every_config_mmengine_loads_loads_here_to_the_same_keys():
    views = _loadable()
    assert len(views) == 1119  # 162 + 120 + 838 - 1 lazy-import base
    differ = []
    for rel, view in views.items():
        cfg = oss.load_config(config_path(rel))
        differ += [f"{rel}: {key}" for key in OPTIMISATION_KEYS
                   if key in view and cfg.get(key) != view[key]]
    assert not differ, differ[:5]


def test_mmengine_only_syntax_is_read_by_mmengine():
    # `_base_.data_preprocessor[...]` inside Python code and the twins `_delete=True` typo
    cfg = oss.load_config(config_path("mmpretrain-1.2.0/mobileone/mobileone-s1_8xb32_in1k.py"))
    assert cfg["optim_wrapper"]["paramwise_cfg"] == {"norm_decay_mult": 0.0}
    twins = [rel for rel, view in _loadable().items()
             if "_delete" in str(view.get("optim_wrapper", {}).get("paramwise_cfg", {}))]
    assert twins
    cfg = oss.load_config(config_path(twins[0]))
    assert cfg["optim_wrapper"]["paramwise_cfg"]["_delete"] is True  # an ordinary key


@pytest.mark.parametrize("rel", [rel for rel, view in load_views().items()
                                 if view.get("lazy_import")])
def test_lazy_import_configs_are_refused_naming_the_file(rel):
    with pytest.raises(oss.ConfigError, match=r"replknet|lazy|import"):
        oss.load_config(config_path(rel))


def test_a_base_from_another_package_is_refused_naming_the_package():
    rel = "mmselfsup-1.0.0/benchmarks/classification/cifar/resnet50_8xb128-steplr-350e_cifar10.py"
    with pytest.raises(oss.ConfigError, match=r"'mmcls::_base_/datasets/cifar10_bs16.py' is a "
                                              r"config of the package 'mmcls'"):
        oss.load_config(config_path(rel))


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_read_base_and_relative_imports_are_refused(tmp_path):
    path = _write(tmp_path, "lazy.py", """
        from mmengine.config import read_base
        with read_base():
            from .base import *
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))
    """)
    with pytest.raises(oss.ConfigError, match=r"lazy.py: a new-style \(lazy-import\)"):
        oss.load_config(path)


def test_third_party_import_in_an_mmengine_file_is_refused_as_mmengine_reads_it(tmp_path):
    path = _write(tmp_path, "imports.py", """
        import numpy as np
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=float(np.float32(0.1))))
    """)
    with pytest.raises(oss.ConfigError, match=r"imports.py: `import numpy`: MMEngine reads"):
        oss.load_config(path)


def test_mixed_generations_load_but_are_refused_when_built_naming_the_keys(tmp_path):
    path = _write(tmp_path, "mixed.py", """
        optimizer = dict(type='SGD', lr=0.1)
        optim_wrapper = dict(optimizer=optimizer)
        lr_config = dict(policy='Fixed')
        runner = dict(type='EpochBasedRunner', max_epochs=1)
    """)
    cfg = oss.load_config(path)  # MMEngine loads it too (upstream cannot train it)
    with pytest.raises(oss.ConfigError, match=r"mixes the two config generations: 'lr_config', "
                                              r"'runner' belong to MMSelfSup 0.x"):
        oss.config.generation_of(cfg)


def test_a_0x_train_cfg_is_not_an_mmengine_loop():
    # MMSelfSup 0.11's classification runtime has train_cfg = {} next to optimizer_config
    cfg = oss.load_config(config_path(
        "mmselfsup-0.11.0/benchmarks/classification/_base_/default_runtime.py"))
    assert cfg["train_cfg"] == {} and oss.config.generation_of(cfg) == "mmcv1"
    assert oss.config.generation_of({"train_cfg": {"by_epoch": True, "max_epochs": 2}}) == \
        "mmengine"
    assert oss.config.generation_of({"optimizer": {"type": "SGD"}}) is None


def test_a_config_that_raises_is_a_config_error_naming_the_file_and_line(tmp_path):
    path = _write(tmp_path, "raises.py", """
        lr = 0.1
        optimizer = dict(type='SGD', lr=lr / 0)
    """)
    with pytest.raises(oss.ConfigError, match=r"raises.py:3: running the config file raised "
                                              r"ZeroDivisionError"):
        oss.load_config(path)


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.py"
    path.write_bytes("# caf\xe9\noptimizer = dict(type='SGD', lr=0.1)\n".encode("latin-1"))
    with pytest.raises(oss.ConfigError, match=r"latin1.py: not a UTF-8 text file"):
        oss.load_config(str(path))


def test_a_comment_mentioning_a_base_variable_is_harmless(tmp_path):
    path = _write(tmp_path, "comment.py", """
        # policies={{_base_.rand_increasing_policies}},
        optimizer = dict(type='SGD', lr=0.1)
    """)
    assert oss.load_config(path)["optimizer"]["lr"] == 0.1
    path = _write(tmp_path, "value.py", """
        policies = {{_base_.rand_increasing_policies}}
    """)
    with pytest.raises(oss.ConfigError, match=r"uses \{\{_base_.rand_increasing_policies\}\} "
                                              r"but has no _base_"):
        oss.load_config(path)


def test_mmengine_load_errors_name_the_file(tmp_path):
    # MMEngine refuses to merge a dict into a base value that is not a dict
    base = _write(tmp_path, "base.py", "optim_wrapper = 3\n")
    path = _write(tmp_path, "child.py", f"""
        _base_ = [{os.path.basename(base)!r}]
        optim_wrapper = dict(optimizer=dict(lr=2))
    """)
    with pytest.raises(oss.ConfigError, match=r"child.py: MMEngine could not load this config"):
        oss.load_config(path)
