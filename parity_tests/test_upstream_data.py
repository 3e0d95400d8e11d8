"""The vendored upstream configs and MMEngine's views of them are consistent (cheap).

The data comes from ``tools/upstream_configs.py``; these tests read only the
files, never MMEngine.
"""

import importlib.util
import json
from collections import Counter

import pytest

from upstream_data import CONFIG_DIR, DISTS, VIEWS_FILE, config_path, generation, load_views

REPO = CONFIG_DIR.parents[2]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "upstream_configs_tool", REPO / "tools" / "upstream_configs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # stdlib imports only; mmengine is imported lazily
    return module


@pytest.fixture(scope="module")
def views():
    return load_views()


@pytest.fixture(scope="module")
def raw_views():
    return load_views(decode=False)


def test_views_and_files_match(views):
    on_disk = {p.relative_to(CONFIG_DIR).as_posix() for p in CONFIG_DIR.rglob("*.py")}
    assert set(views) == on_disk
    assert list(views) == sorted(views)
    assert {rel.split("/", 1)[0] for rel in views} == set(DISTS)
    for rel in views:
        assert config_path(rel).is_file()
    # only config files and the wheels' licences were vendored
    other = {p.name for p in CONFIG_DIR.rglob("*") if p.is_file() and p.suffix != ".py"}
    assert other <= {"LICENSE", "README.md"}
    assert not list(CONFIG_DIR.rglob("metafile.yml"))


def test_one_line_per_config():
    lines = VIEWS_FILE.read_text().splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert len(lines) == len(load_views(decode=False)) + 2


def test_counts(views):
    files = Counter(rel.split("/", 1)[0] for rel in views)
    errors = Counter(rel.split("/", 1)[0] for rel, v in views.items() if "error" in v)
    lazy = Counter(rel.split("/", 1)[0] for rel, v in views.items() if v.get("lazy_import"))
    assert files == {"mmselfsup-0.11.0": 162, "mmselfsup-1.0.0": 189, "mmpretrain-1.2.0": 846}
    # MMENGINE.md section 9: 77 of the 1035 MMEngine-generation files do not load
    assert errors == {"mmselfsup-1.0.0": 69, "mmpretrain-1.2.0": 8}
    assert lazy == {"mmpretrain-1.2.0": 5}
    causes = Counter(v["error"].split(",")[0] for v in views.values() if "error" in v)
    assert causes == {
        "ModuleNotFoundError: mmcls is not installed": 62,
        "ModuleNotFoundError: mmdet is not installed": 7,
        "ModuleNotFoundError: mmsegmentation is not installed": 2,
        "KeyError: 'test_pipeline'": 2,
        "RuntimeError: The configuration file type in the inheritance chain must match the "
        "current configuration file type": 4,
    }
    with_optimizer = Counter(
        rel.split("/", 1)[0] for rel, v in views.items()
        if ("optimizer" if generation(rel) == "0.x" else "optim_wrapper") in v)
    assert with_optimizer == {"mmselfsup-0.11.0": 100, "mmselfsup-1.0.0": 69,
                              "mmpretrain-1.2.0": 513}


def test_readme_summary_is_current(tool, raw_views):
    readme = (CONFIG_DIR / "README.md").read_text()
    assert readme == tool.readme_text(raw_views)


def test_error_entries(views):
    for rel, view in views.items():
        if "error" not in view:
            continue
        assert set(view) <= {"error", "lazy_import"}, rel
        kind, _, message = view["error"].partition(": ")
        assert kind.isidentifier() and message, rel
        assert "/work/" not in message and "/tmp/" not in message, rel
    # a file that names an mmcls:: base itself is one MMEngine cannot load alone
    for rel in views:
        if "'mmcls::" in config_path(rel).read_text():
            assert views[rel]["error"].startswith("ModuleNotFoundError: mmcls"), rel


def test_tuple_encoding_round_trips(tool, views, raw_views):
    text = VIEWS_FILE.read_text()
    assert '"__tuple__"' in text
    for rel, view in views.items():
        assert tool.encode(view) == raw_views[rel], rel
    assert "__tuple__" not in json.dumps(views, default=lambda t: list(t))


def test_known_facts(views):
    # MMSelfSup 1.0.0 SimCLR: LARS inside optim_wrapper, lars_exclude custom keys
    v = views["mmselfsup-1.0.0/selfsup/simclr/simclr_resnet50_16xb256-coslr-200e_in1k.py"]
    assert v["default_scope"] == "mmselfsup"
    ow = v["optim_wrapper"]
    assert ow["optimizer"] == {"type": "LARS", "lr": 4.8, "weight_decay": 1e-6, "momentum": 0.9}
    assert ow["paramwise_cfg"]["custom_keys"]["downsample.1"] == {"decay_mult": 0,
                                                                  "lars_exclude": True}
    assert v["optimizer"] == ow["optimizer"]  # the top-level variable is kept too
    assert [s["type"] for s in v["param_scheduler"]] == ["LinearLR", "CosineAnnealingLR"]
    assert v["model"]["backbone"] == {"type": "ResNet", "depth": 50}

    # MMPretrain MAE pre-training: AMP wrapper, betas a tuple
    v = views["mmpretrain-1.2.0/mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py"]
    ow = v["optim_wrapper"]
    assert ow["type"] == "AmpOptimWrapper" and ow["loss_scale"] == "dynamic"
    assert ow["optimizer"]["betas"] == (0.9, 0.95)
    assert isinstance(ow["optimizer"]["betas"], tuple)
    assert ow["optimizer"]["lr"] == pytest.approx(1.5e-4 * 4096 / 256)
    assert v["model"]["backbone"] == {"type": "MAEViT", "arch": "b"}

    # MAE fine-tune: layer decay constructor, base custom_keys merged into the child's
    v = views["mmpretrain-1.2.0/mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py"]
    ow = v["optim_wrapper"]
    assert ow["constructor"] == "LearningRateDecayOptimWrapperConstructor"
    assert ow["paramwise_cfg"]["layer_decay_rate"] == 0.65
    assert list(ow["paramwise_cfg"]["custom_keys"])[:2] == [".absolute_pos_embed",
                                                            ".relative_position_bias_table"]
    assert v["model"]["backbone"] == {"type": "VisionTransformer", "arch": "base"}
    assert v["model"]["neck"] is None

    # twins: `_delete=True` (sic) is an ordinary key, so the base's paramwise_cfg is merged
    rel = "mmpretrain-1.2.0/twins/twins-svt-base_8xb128_in1k.py"
    assert "paramwise_cfg=dict(_delete=True," in config_path(rel).read_text()
    pw = views[rel]["optim_wrapper"]["paramwise_cfg"]
    assert pw["_delete"] is True and "_delete_" not in pw
    assert pw["flat_decay_mult"] == 0.0 and ".absolute_pos_embed" in pw["custom_keys"]

    # maskfeat fine-tune inherits both `by_epoch` and `type` (the Runner refuses it)
    tc = views["mmpretrain-1.2.0/maskfeat/benchmarks/vit-base-p16_8xb256-coslr-100e_in1k.py"][
        "train_cfg"]
    assert tc["type"] == "EpochBasedTrainLoop" and tc["by_epoch"] is True

    # MMSelfSup 0.11.0 BYOL fp16: regex paramwise_options in file order, accumulation
    v = views["mmselfsup-0.11.0/selfsup/byol/byol_resnet50_8xb256-fp16-accum2-coslr-200e_in1k.py"]
    assert "default_scope" not in v and "optim_wrapper" not in v
    assert list(v["optimizer"]["paramwise_options"]) == ["(bn|gn)(\\d+)?.(weight|bias)", "bias"]
    assert v["optimizer_config"] == {"update_interval": 2}
    assert v["fp16"] == {"loss_scale": 512.0}
    assert v["lr_config"]["policy"] == "CosineAnnealing"
    assert v["custom_hooks"][0]["type"] == "BYOLHook"

    # lazy import: a stray `from mmpretrain.models import ...` makes a base lazy in
    # MMEngine's eyes; it loads alone, its plain children cannot
    v = views["mmpretrain-1.2.0/_base_/models/replknet-31B_in1k.py"]
    assert v["lazy_import"] is True and "error" not in v
    v = views["mmpretrain-1.2.0/replknet/replknet-31B_32xb64_in1k.py"]
    assert v["lazy_import"] is True and v["error"].startswith("RuntimeError")
