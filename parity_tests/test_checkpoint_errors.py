"""Damaged, incomplete or unsaveable checkpoints: one-line errors naming the file or key.

A step cut short (each JSON file orbax writes, and its binary array files), an
``extra`` NumPy cannot put in JSON, an empty step folder, a torch checkpoint with a
bad ``meta`` or ``optimizer``, a truncated ``.pth``; and a save into a path that is a
file, which used to leave orbax's threads waiting for five minutes at exit (run in a
subprocess with a timeout).
"""

import os
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optax_selfsup as oss
from optax_selfsup.checkpoint import (
    CheckpointError,
    CheckpointWarning,
    TorchCheckpointError,
    from_torch_checkpoint,
    latest_step,
    restore_checkpoint,
    save_checkpoint,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), lr_config=dict(policy="Fixed"),
           runner=dict(type="EpochBasedRunner", max_epochs=2))
PARAMS = {"head": {"fc": {"weight": jnp.ones((2, 3)), "bias": jnp.zeros(2)}}}


def _state():
    return oss.build_optimizer(CFG, PARAMS, steps_per_epoch=2).init(PARAMS)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One complete step (3) to copy and damage."""
    path = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(path, 3, params=PARAMS, opt_state=_state(), extra={"epoch": 1}, config=CFG)
    return path


def _files(step_dir):
    return sorted(os.path.relpath(os.path.join(r, f), step_dir)
                  for r, _, fs in os.walk(step_dir) for f in fs)


def _damaged(saved, tmp_path, name):
    path = tmp_path / "ckpt"
    shutil.copytree(saved, path)
    target = path / "3" / name
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return path, target


JSON_FILES = ["params/_METADATA", "opt_state/_METADATA", "params/_sharding",
              "opt_state/array_metadatas/process_0", "extra/metadata",
              "optimizer/optimizer.json"]


def test_the_damaged_files_checked_exist(saved):
    assert set(JSON_FILES) <= set(_files(saved / "3"))


@pytest.mark.parametrize("name", JSON_FILES)
def test_a_truncated_json_file_is_named(saved, tmp_path, name):
    path, target = _damaged(saved, tmp_path, name)
    with pytest.raises(CheckpointError) as err:
        restore_checkpoint(path, params=PARAMS, opt_state=_state(), config=CFG)
    message = str(err.value)
    assert str(target) in message and "is damaged" in message and "\n" not in message


def test_a_truncated_array_file_is_one_line_naming_the_step(saved, tmp_path):
    path, _ = _damaged(saved, tmp_path, "opt_state/manifest.ocdbt")
    with pytest.raises(CheckpointError, match=r"step 3: orbax could not read it") as err:
        restore_checkpoint(path, params=PARAMS, opt_state=_state(), config=CFG)
    assert "\n" not in str(err.value) and "manifest.ocdbt" in str(err.value)


def test_numpy_scalars_in_extra_are_saved_as_numbers(tmp_path):
    extra = {"loss": np.float32(1.5), "epoch": np.int64(3), "ok": np.bool_(True),
             "lr": jnp.asarray(0.25), "history": [np.float64(0.5), (1, np.int32(2))]}
    save_checkpoint(tmp_path, 1, params=PARAMS, opt_state=_state(), extra=extra, config=CFG)
    restored = restore_checkpoint(tmp_path, params=PARAMS, opt_state=_state(), config=CFG)
    assert restored.extra == {"loss": 1.5, "epoch": 3, "ok": True, "lr": 0.25,
                              "history": [0.5, [1, 2]]}
    assert type(restored.extra["epoch"]) is int


@pytest.mark.parametrize("extra,fragment", [
    ({"model": object()}, "extra['model'] is a object, which JSON cannot hold"),
    ({"w": np.ones(3)}, "extra['w'] is an array of shape (3,)"),
    ({"run": {1: "a"}}, "extra['run'] has the key 1 (int)"),
])
def test_what_cannot_be_saved_is_refused_before_anything_is_written(tmp_path, extra, fragment):
    with pytest.raises(CheckpointError) as err:
        save_checkpoint(tmp_path / "ckpt", 1, params=PARAMS, opt_state=_state(), extra=extra)
    assert fragment in str(err.value)
    assert not (tmp_path / "ckpt").exists() or os.listdir(tmp_path / "ckpt") == []


def test_an_empty_step_folder_is_skipped(saved, tmp_path):
    path = tmp_path / "ckpt"
    shutil.copytree(saved, path)
    os.mkdir(path / "7")
    with pytest.warns(CheckpointWarning, match=r"incomplete step folder\(s\) \[7\]"):
        assert latest_step(path) == 3
    with pytest.warns(CheckpointWarning):
        assert restore_checkpoint(path, params=PARAMS, opt_state=_state(), config=CFG).step == 3
    with pytest.raises(CheckpointError, match=r"step 7 is incomplete or not an optax_selfsup "
                                              r"checkpoint: it lacks params/_METADATA, "
                                              r"opt_state/_METADATA \(holds nothing\)"):
        restore_checkpoint(path, params=PARAMS, opt_state=_state(), step=7)


def test_an_empty_step_folder_does_not_count_toward_max_to_keep(saved, tmp_path):
    """orbax's own max_to_keep counted it as a step and deleted a real checkpoint."""
    path = tmp_path / "ckpt"
    shutil.copytree(saved, path)
    os.mkdir(path / "7")
    save_checkpoint(path, 8, params=PARAMS, opt_state=_state(), config=CFG, max_to_keep=2)
    assert sorted(os.listdir(path)) == ["3", "7", "8"]
    save_checkpoint(path, 9, params=PARAMS, opt_state=_state(), config=CFG, max_to_keep=2)
    assert sorted(os.listdir(path)) == ["7", "8", "9"]


def test_a_directory_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    for call in (lambda p: latest_step(p),
                 lambda p: save_checkpoint(p, 1, params=PARAMS, opt_state=_state()),
                 lambda p: restore_checkpoint(p, params=PARAMS, opt_state=_state())):
        with pytest.raises(NotADirectoryError, match="is a file"):
            call(tmp_path / "f")
    with pytest.raises(NotADirectoryError, match="is inside .*, which is a file"):
        save_checkpoint(tmp_path / "f" / "sub", 1, params=PARAMS, opt_state=_state())


EXIT_SCRIPT = textwrap.dedent("""
    import sys, time
    import jax.numpy as jnp
    import optax_selfsup as oss
    params = {"w": jnp.ones((3, 3))}
    state = oss.sgd(lr=0.1, momentum=0.9).init(params)
    open(sys.argv[1], "w").write("a file, not a directory")
    try:
        oss.save_checkpoint(sys.argv[1], 1, params=params, opt_state=state)
    except Exception as err:
        print("refused:", type(err).__name__, err)
    try:  # a leaf orbax cannot write: refused before orbax starts
        oss.save_checkpoint(sys.argv[2], 1, params={"w": "text"}, opt_state=state)
    except Exception as err:
        print("refused:", type(err).__name__, err)
    import orbax.checkpoint as ocp

    def disk_full(*args, **kwargs):  # a failure inside orbax, the arrays being written
        raise OSError(28, "No space left on device")

    ocp.JsonCheckpointHandler.async_save = disk_full
    try:
        oss.save_checkpoint(sys.argv[2], 2, params=params, opt_state=state)
    except Exception as err:
        print("failed:", type(err).__name__, str(err).splitlines()[0])
    print("exiting")
""")


def test_a_failed_save_lets_the_process_exit(tmp_path):
    script = tmp_path / "save.py"
    script.write_text(EXIT_SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "file"),
                             str(tmp_path / "dir")], capture_output=True, text=True,
                            timeout=120, env=env)  # it hung for 5 minutes at exit
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused: NotADirectoryError" in result.stdout and "exiting" in result.stdout
    assert "refused: CheckpointError save_checkpoint: params['w'] is a str" in result.stdout
    assert ("failed: CheckpointError save_checkpoint: writing step 2 to " in result.stdout
            and "No space left on device" in result.stdout)
    assert os.listdir(tmp_path / "dir") == []  # no half-written step left behind


# ------------------------------------------------------------------------------ torch


def _torch_ckpt():
    return {"meta": {"epoch": 1, "iter": 2},
            "state_dict": {"head.fc.weight": torch.ones(2, 3), "head.fc.bias": torch.zeros(2)},
            "optimizer": {"state": {}, "param_groups": [
                dict(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=False,
                     params=[0, 1])]}}


def _template():
    return jax.tree.map(jnp.zeros_like, PARAMS)


def test_a_good_torch_checkpoint_reads():
    assert from_torch_checkpoint(_torch_ckpt(), CFG, _template(),
                                 steps_per_epoch=2).iteration == 2


@pytest.mark.parametrize("edit,fragment", [
    (lambda c: c["optimizer"].pop("param_groups"),
     "the checkpoint dict: optimizer has no 'param_groups' (keys: ['state'])"),
    (lambda c: c["optimizer"].pop("state"), "optimizer has no 'state'"),
    (lambda c: c.update(optimizer=[1]), "optimizer is a list, not a torch optimizer"),
    (lambda c: c["optimizer"].update(param_groups=[{"lr": 0.1}]),
     "optimizer['param_groups'] must be a list of dicts with a 'params' list"),
    (lambda c: c["meta"].pop("iter"), "meta has no 'iter' (keys: ['epoch'])"),
    (lambda c: c["meta"].update(iter=-3), "meta['iter']=-3 is not an iteration"),
    (lambda c: c.update(meta=None), "meta is a NoneType, not a dict"),
    (lambda c: c.update(message_hub={}), "was written by MMEngine's Runner (it has "
     "message_hub / param_schedulers); this config is an MMSelfSup 0.x (mmcv 1.x) config"),
    (lambda c: c.pop("optimizer"), "neither an mmcv nor an MMEngine checkpoint (keys: "
     "['meta', 'state_dict'])"),
])
def test_a_bad_torch_checkpoint_is_named(edit, fragment):
    ckpt = _torch_ckpt()
    edit(ckpt)
    with pytest.raises(TorchCheckpointError) as err:
        from_torch_checkpoint(ckpt, CFG, _template(), steps_per_epoch=2)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_truncated_torch_file_is_named(tmp_path):
    path = tmp_path / "epoch_1.pth"
    torch.save(_torch_ckpt(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TorchCheckpointError, match=r"epoch_1.pth: not a readable torch "
                                                   r"checkpoint .*truncated or damaged"):
        from_torch_checkpoint(str(path), CFG, _template(), steps_per_epoch=2)
    with pytest.raises(FileNotFoundError, match="missing.pth: no such torch checkpoint file"):
        from_torch_checkpoint(str(tmp_path / "missing.pth"), CFG, _template(),
                              steps_per_epoch=2)
