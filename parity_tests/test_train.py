"""``optax-selfsup train``: the loop, its log, checkpoints, bit-identical resume, the probe;
every shipped config trains; the algorithm features (SimSiam's fixed predictor lr, SwAV's
frozen prototypes, accumulation) in a real run.

Every run goes through ``cli.main(["train", ...])`` as a user's would, on tiny
settings (a few iterations of 8-16 images) except the probe run.
"""

import glob
import json
import math
import os
import warnings

import jax
import numpy as np
import pytest

import optax_selfsup as oss
from optax_selfsup.cli import main
from optax_selfsup.training.run_length import fit_to_run

SIMCLR = "configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"
BYOL = "configs/selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py"
MAE = "configs/selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py"
SIMSIAM = "configs/selfsup/simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py"
SWAV = "configs/selfsup/swav/swav_resnet50_8xb32-mcrop-2-6-coslr-200e_in1k.py"
BARLOWTWINS = "configs/selfsup/barlowtwins/barlowtwins_resnet50_8xb256-accum8-coslr-300e_in1k.py"
MOCOV2 = "configs/selfsup/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py"
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
    # a config whose file name names an MMSelfSup algorithm without a model here
    densecl = tmp_path / "densecl_resnet50_8xb32-coslr-200e_in1k.py"
    densecl.write_text(open(SIMCLR).read().replace("../../_base_", os.path.abspath(
        "configs/_base_")))
    assert main(["train", str(densecl), "--work-dir", str(tmp_path / "w")] + TINY) == 2
    err = capsys.readouterr().err
    assert "DenseCL" in err and "SimCLR" in err and "SwAV" in err and "--model" in err
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


# ---- every shipped config, and the algorithms' optimizer features in real runs ---------------

def _shipped_configs():
    out = []
    for path in sorted(glob.glob("configs/**/*.py", recursive=True)):
        cfg = oss.load_config(path)
        if "optimizer" in cfg or "optim_wrapper" in cfg:  # both generations
            out.append(path)
    return out


SHIPPED = _shipped_configs()
EXPECTED_MODEL = {  # the directory (or file) -> the model train picks
    "simclr": "simclr_resnet", "byol": "byol_resnet", "mae": "mae_vit",
    "mocov1": "mocov1_resnet", "mocov2": "mocov2_resnet", "swav": "swav_resnet",
    "simsiam": "simsiam_resnet", "barlowtwins": "barlowtwins_resnet",
    "rotation_pred": "rotationpred_resnet", "simmim": "simmim_swin",
    "classification": "classification_vit",
    "benchmarks": "classification_vit",  # MMPretrain 1.x: configs/mae/benchmarks/
}
# shipped recipes of algorithms without a small model: train refuses them by name, and
# trains their optimizer on the model --model names (a ResNet or a ViT like theirs)
STAND_IN = {"spark": "simclr_resnet", "mocov3": "mae_vit", "beitv2": "mae_vit"}


def test_every_config_with_an_optimizer_is_listed():
    assert len(SHIPPED) >= 19 and all("default_runtime" not in c for c in SHIPPED)


@pytest.mark.parametrize("config", SHIPPED, ids=lambda c: os.path.basename(c)[:-3])
def test_every_shipped_config_trains(config, tmp_path, cache, capsys):
    """A couple of iterations through the CLI; no warning about the models' own layers
    (their names are upstream's, so uneven norm-layer rules are notes, not warnings)."""
    work_dir = str(tmp_path)
    parent = os.path.basename(os.path.dirname(config))
    stand_in = STAND_IN.get(parent)
    if stand_in is not None:
        assert main(["train", config, "--work-dir", str(tmp_path / "refused")]) == 2
        assert "has no small training model" in capsys.readouterr().err
        cache = cache + ["--model", stand_in]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", config, "--epochs", "1", "--steps-per-epoch", "2",
                     "--batch-size", "8", "--log-interval", "1", "--no-progress",
                     "--no-probe", "--work-dir", work_dir] + cache) == 0
    ours = [str(w.message) for w in caught if "optax_selfsup" in w.filename
            or issubclass(w.category, oss.NormLayerWarning)]
    assert ours == []
    out = capsys.readouterr().out
    assert "warning" not in out.lower()
    records = _records(work_dir)
    assert len(records) == 2 and all(math.isfinite(r["loss"]) for r in records)
    with open(os.path.join(work_dir, "config.json")) as f:
        model = json.load(f)["model"]
    assert model == (stand_in or EXPECTED_MODEL.get(parent, "simclr_resnet")), (config, model)
    if model == "simclr_resnet" and parent != "simclr" and stand_in is None:
        assert "the demo model" in out
    params = _restore_raw(work_dir, 2)["params"]
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(params))


def test_simsiam_predictor_keeps_its_lr(tmp_path, cache):
    """SimSiamHook(fix_pred_lr=True, lr=0.05) with the 'predictor' fix_lr rule: the
    predictor's group stays at 0.05 while the cosine (by epoch) halves the rest."""
    work_dir = str(tmp_path)
    assert main(["train", SIMSIAM, "--epochs", "2", "--steps-per-epoch", "2",
                 "--batch-size", "8", "--log-interval", "1", "--no-progress", "--no-probe",
                 "--work-dir", work_dir] + cache) == 0
    records = _records(work_dir)
    assert [r["lr"] for r in records] == pytest.approx([0.05, 0.05, 0.025, 0.025])
    for r in records[2:]:
        predictor = {k: v for k, v in r["lr_groups"].items() if k.startswith("head.predictor")}
        others = {k: v for k, v in r["lr_groups"].items() if not k.startswith("head.predictor")}
        assert list(predictor.values()) == pytest.approx([0.05]), r["lr_groups"]
        assert list(others.values()) == pytest.approx([0.025]), r["lr_groups"]
    assert "lr_groups" not in records[0]  # epoch 1: every group at 0.05


def test_swav_prototypes_frozen_then_trained(tmp_path, cache, capsys):
    """frozen_layers_cfg=dict(prototypes=5005) is fitted to half of the 6-iteration run:
    the prototypes keep their (normalised) initial values through epoch 1 while the rest
    trains, and move in epoch 2."""
    from optax_selfsup.models import init_model, normalize_prototypes

    work_dir = str(tmp_path)
    assert main(["train", SWAV, "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "8",
                 "--no-progress", "--no-probe", "--work-dir", work_dir] + cache) == 0
    assert "'prototypes' frozen for 5005 iterations -> 3 of this run's 6" in \
        capsys.readouterr().out
    _, init, _ = init_model("swav_resnet", seed=0, image_size=16)
    start = normalize_prototypes(init)
    after1, after2 = (_restore_raw(work_dir, step)["params"]["params"] for step in (3, 6))
    kernel = lambda p: np.asarray(p["head"]["prototypes"]["kernel"])  # noqa: E731
    np.testing.assert_allclose(kernel(after1), kernel(start), rtol=0, atol=1e-6)
    assert np.abs(kernel(after2) - kernel(after1)).max() > 1e-3
    conv = lambda p: np.asarray(p["backbone"]["conv1"]["kernel"])  # noqa: E731
    assert np.abs(conv(after1) - conv(init)).max() > 1e-5  # the rest trained (LARS: small steps)


@pytest.mark.parametrize("config, interval", [(BARLOWTWINS, 8), (BYOL, 16)])
def test_accumulation_updates_every_k_iterations(config, interval, tmp_path, cache):
    """update_interval=k: the log's "updates" count is 1 at every k-th iteration and at the
    run's last (the remainder flush), 0 elsewhere (mmcv's DistOptimizerHook)."""
    work_dir = str(tmp_path)
    assert main(["train", config, "--epochs", "2", "--steps-per-epoch", "9", "--batch-size",
                 "8", "--log-interval", "1", "--no-progress", "--no-probe", "--work-dir",
                 work_dir] + cache) == 0
    records = _records(work_dir)
    assert len(records) == 18
    updated = [i + 1 for i, r in enumerate(records) if r["updates"]]
    assert updated == [i for i in range(1, 19) if i % interval == 0 or i == 18]
    assert all(r["updates"] in (0, 1) for r in records)


def test_moco_resume_continues_bit_for_bit(tmp_path, cache):
    """The key encoder, the queue and its pointer are part of the checkpoint."""
    args = ["train", MOCOV2, "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "8",
            "--no-progress", "--no-probe"] + cache
    full, parts = str(tmp_path / "full"), str(tmp_path / "parts")
    assert main(args + ["--work-dir", full]) == 0
    assert main(args + ["--work-dir", parts, "--stop-after", "1"]) == 0
    assert main(args + ["--work-dir", parts, "--resume"]) == 0
    a, b = _restore_raw(full, 4), _restore_raw(parts, 4)
    assert set(a["params"]["model_state"]) == {"batch_stats", "key", "queue", "queue_ptr"}
    assert int(a["params"]["model_state"]["queue_ptr"]) == 32 % 512
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ---- which model a config trains ------------------------------------------------------------

@pytest.mark.parametrize("cfg, path, model", [
    ({"model": {"type": "MoCo", "neck": {"type": "LinearNeck"}}}, None, "mocov1_resnet"),
    ({"model": {"type": "MoCo", "neck": {"type": "MoCoV2Neck"}}}, None, "mocov2_resnet"),
    ({"model": {"type": "Classification", "backbone": {"type": "MIMVisionTransformer"}}}, None,
     "classification_vit"),
    ({"model": {"backbone": {"type": "SimMIMSwinTransformer"}}}, None, "simmim_swin"),
    ({"model": {"momentum": 0.99}}, "x/mocov2_resnet50_8xb32.py", "mocov2_resnet"),
    ({"optimizer": {"type": "AdamW", "model_type": "vit", "layer_decay": 0.65}}, "a/b.py",
     "classification_vit"),
    ({}, "configs/x/rotation-pred_resnet50.py", "rotationpred_resnet"),
    ({}, "configs/x/barlowtwins_resnet50.py", "barlowtwins_resnet"),
    ({}, "my_sgd_experiment.py", "simclr_resnet"),
    ({}, None, "simclr_resnet"),
])
def test_choose_model_rules(cfg, path, model):
    from optax_selfsup.training.tasks import choose_model

    assert choose_model(cfg, path, None)[0] == model


@pytest.mark.parametrize("cfg, path, words", [
    ({"model": {"type": "DenseCL"}}, None, ["'DenseCL'", "SwAV", "mocov2_resnet"]),
    ({"model": {"type": "MoCo", "neck": {"type": "NonLinearNeck"}}}, None,
     ["LinearNeck", "MoCoV2Neck", "--model"]),
    ({"model": {"type": "Classification", "backbone": {"type": "ResNet"}}}, None, ["'ResNet'"]),
    ({"optimizer": {"type": "AdamW", "model_type": "swin"}}, None, ["'swin'", "'vit'"]),
    ({}, "configs/npid_resnet50_8xb32.py", ["NPID", "--model", "SimCLR"]),
    ({}, "configs/mocov3_vit-small.py", ["MoCoV3", "--model"]),
])
def test_choose_model_refuses_algorithms_without_a_model(cfg, path, words):
    from optax_selfsup.training.tasks import choose_model

    with pytest.raises(oss.ConfigError) as err:
        choose_model(cfg, path, None)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_upstream_configs_pick_their_algorithm():
    """MMSelfSup 0.11.0's own selfsup configs (with their ``model`` sections): each
    supported algorithm gets its model, each other one is refused naming its type."""
    from optax_selfsup.training.tasks import ALGORITHMS, choose_model

    root = os.path.join(os.path.dirname(__file__), "data", "upstream_configs",
                        "mmselfsup-0.11.0", "selfsup")
    seen = set()
    for path in sorted(glob.glob(os.path.join(root, "*", "*.py"))):
        if "_base_" in path:
            continue
        cfg = oss.load_config(path)
        kind = cfg["model"]["type"]
        if kind == "MoCo":
            version = {"LinearNeck": 1, "MoCoV2Neck": 2}[cfg["model"]["neck"]["type"]]
            expected = f"mocov{version}_resnet"
            assert os.path.basename(path).startswith(f"mocov{version}")
        else:
            expected = ALGORITHMS.get(kind)
        if expected is None:
            with pytest.raises(oss.ConfigError, match=repr(kind)):
                choose_model(cfg, path, None)
        else:
            assert choose_model(cfg, path, None)[0] == expected, path
            seen.add(expected)
    assert seen == set(ALGORITHMS.values())


@pytest.mark.parametrize("config", [MOCOV2, "configs/selfsup/mocov1/"
                                    "mocov1_resnet50_8xb32-steplr-200e_in1k.py"])
def test_moco_probe_is_above_chance(config, tmp_path, cache):
    """The other contrastive methods on the probe run's settings (SimCLR: above)."""
    assert main(["train", config, "--work-dir", str(tmp_path)] + PROBE_RUN + cache) == 0
    probe = _records(str(tmp_path))[-1]
    assert probe["chance"] == 10.0 and probe["linear_probe_top1"] > 15.0, probe


def test_model_size_limits_are_config_errors(tmp_path, capsys):
    simmim = "configs/selfsup/simmim/simmim_swin-base_16xb128-coslr-100e_in1k-192.py"
    assert main(["train", simmim, "--image-size", "24", "--work-dir", str(tmp_path)]
                + TINY) == 2
    assert "--image-size 24" in capsys.readouterr().err
    assert main(["train", MOCOV2, "--batch-size", "520", "--steps-per-epoch", "1",
                 "--epochs", "1", "--no-progress", "--no-probe", "--compile-cache", "none",
                 "--work-dir", str(tmp_path / "moco")]) == 2
    err = capsys.readouterr().err
    assert "520" in err and "512" in err


def test_describe_lists_every_model_with_its_torch_names(capsys):
    """``describe --model NAME`` initialises the model abstractly (inside jax.eval_shape)."""
    from optax_selfsup.models import MODELS

    for name in MODELS:
        assert main(["describe", SIMCLR, "--model", name]) == 0, name
        assert "backbone." in capsys.readouterr().out
