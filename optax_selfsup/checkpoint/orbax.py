"""Checkpoints of params and optimizer state with orbax, refused when they do not fit.

A checkpoint is one orbax step directory holding the items ``params`` and
``opt_state`` (``ocp.args.StandardSave``: plain pytrees of arrays, any sharding),
``extra`` (JSON: the epoch, a data-loader position, whatever the run needs) and
``optimizer`` (JSON: the optimizer record, ``record.py``).
The optimizer state carries the whole run position (the global iteration, the
accumulation buffer of an unfinished group, the loss scale, per-parameter step
counts), so a run restored at any iteration continues bit for bit.

``restore_checkpoint`` takes templates (``tx.init(params)`` and the params, real
arrays or ``jax.ShapeDtypeStruct``; their shardings are the restored arrays'
shardings) and, before loading anything, compares the checkpoint's optimizer
record with the config (``config=``) and its metadata with the templates
(``check_compatible``): another optimizer, accumulation, loss scaling, clipping,
frozen-layer setting or parameter tree is refused with a message that names what
differs, never loaded into the wrong slots.

Saving is synchronous (the call returns when the step is on disk, as before) and
checks its arguments before orbax starts: a failed save leaves no half-written
step and no background thread behind. A step folder without its items (an empty
or half-copied folder) is skipped by ``latest_step`` with a warning.

Raw trees (orbax restored without a target, or ``flax.serialization.to_state_dict``)
are nested dicts and lists; ``state_from_raw(template, raw)`` gives them the
template's NamedTuples back.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import warnings
from typing import Any, NamedTuple

import numpy as np

from ..pytrees import unbox
from .compatible import check_compatible, state_from_raw  # noqa: F401 (re-exported)
from .errors import CheckpointError, CheckpointMismatch, CheckpointWarning  # noqa: F401
from .files import (
    check_json_files,
    check_leaves,
    directory_of,
    jsonable,
    missing_items,
    read_json,
    step_numbers,
)
from .record import RECORD_ITEM, check_record, make_record

_RECORD_FILE = "optimizer.json"


class Restored(NamedTuple):
    step: int
    params: Any
    opt_state: Any
    extra: dict


def _manager(path, create=True):
    import orbax.checkpoint as ocp

    # synchronous: save_checkpoint waits for the write anyway, and a failed asynchronous
    # save leaves orbax's threads waiting minutes for signals that never come. No
    # max_to_keep: orbax would count an empty step folder as a step and delete a real one
    options = ocp.CheckpointManagerOptions(create=create, enable_async_checkpointing=False)
    handlers = {"params": ocp.StandardCheckpointHandler(),
                "opt_state": ocp.StandardCheckpointHandler(),
                "extra": ocp.JsonCheckpointHandler(),
                RECORD_ITEM: ocp.JsonCheckpointHandler(filename=_RECORD_FILE)}
    return ocp.CheckpointManager(path, options=options, item_handlers=handlers)


def _first_line(err) -> str:
    """The error's first line, without tensorstore's spec dump (the file names stay)."""
    text = str(err).strip().splitlines()
    line = text[0].split(" [tensorstore_spec=")[0] if text else ""
    return f"{type(err).__name__}: {line[:600]}"


def _check_step(step, what) -> int:
    integer = isinstance(step, (int, np.integer)) or (
        getattr(step, "shape", None) == () and np.issubdtype(getattr(step, "dtype", float),
                                                              np.integer))
    if isinstance(step, (bool, np.bool_)) or not integer or int(step) < 0:
        raise CheckpointError(f"{what}: step={step!r} must be an int >= 0")
    return int(step)


def save_checkpoint(directory, step: int, *, params, opt_state, extra: dict | None = None,
                    config: dict | None = None, max_to_keep: int | None = None,
                    overwrite: bool = False) -> str:
    """Write ``params``, ``opt_state`` and ``extra`` (JSON values; NumPy scalars are
    converted) as step ``step`` of ``directory``, with the optimizer record of
    ``config`` (the config the optimizer was built from: its ``optimizer.type`` and
    ``update_interval`` are checked at restore). Keeps the ``max_to_keep`` newest steps
    (None: all). A step that exists already is an error unless ``overwrite``. Returns
    the step directory. Every process calls it in a multi-host run."""
    import orbax.checkpoint as ocp

    step = _check_step(step, "save_checkpoint")
    if max_to_keep is not None and (isinstance(max_to_keep, bool) or
                                    not isinstance(max_to_keep, int) or max_to_keep < 1):
        raise CheckpointError(f"save_checkpoint: max_to_keep={max_to_keep!r} must be an "
                              "int >= 1 or None")
    path = directory_of(directory, "save_checkpoint")
    if extra is not None and not isinstance(extra, dict):
        raise CheckpointError(f"save_checkpoint: extra must be a dict, got "
                              f"{type(extra).__name__}")
    extra = jsonable(dict(extra or {}))
    params, opt_state = unbox(params), unbox(opt_state)
    check_leaves(params, "params")
    check_leaves(opt_state, "opt_state")
    record = make_record(opt_state, config)
    step_dir = os.path.join(path, str(step))
    if os.path.isdir(step_dir) and not overwrite:
        raise FileExistsError(f"save_checkpoint: {directory} already holds step {step}; "
                              "pass overwrite=True to replace it")
    before = set(os.listdir(path)) if os.path.isdir(path) else set()
    threads = set(threading.enumerate())
    try:
        with _manager(path) as mngr:
            if os.path.isdir(step_dir):
                if step in mngr.all_steps():
                    mngr.delete(step)
                else:
                    shutil.rmtree(step_dir)
            mngr.save(step, args=ocp.args.Composite(
                params=ocp.args.StandardSave(params),
                opt_state=ocp.args.StandardSave(opt_state),
                extra=ocp.args.JsonSave(extra),
                **{RECORD_ITEM: ocp.args.JsonSave(record)}), force=True)
            mngr.wait_until_finished()
    except Exception as err:
        _settle(threads)
        _remove_partial(path, step, before)
        raise CheckpointError(f"save_checkpoint: writing step {step} to {directory} failed "
                              f"({_first_line(err)})") from err
    if max_to_keep is not None:
        _prune(path, max_to_keep)
    return step_dir


def _prune(path, max_to_keep):
    """Delete all but the ``max_to_keep`` newest complete steps (incomplete step folders
    are neither counted nor touched)."""
    import jax

    if jax.process_index() != 0:
        return
    complete = [s for s in step_numbers(path) if not missing_items(os.path.join(path, str(s)))]
    for old in complete[:-max_to_keep]:
        shutil.rmtree(os.path.join(path, str(old)))


def _settle(threads, timeout=30.0):
    """Wait (at most ``timeout`` seconds) for the threads a failed save started: orbax
    writes the items concurrently, and one item's failure does not stop the others."""
    deadline = time.monotonic() + timeout
    for thread in set(threading.enumerate()) - threads:
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def _remove_partial(path, step, before):
    """The temporary folders of a failed save of ``step`` (orbax writes the step in
    ``<step>.orbax-checkpoint-tmp...`` and renames it when complete)."""
    import jax

    if jax.process_index() != 0 or not os.path.isdir(path):
        return
    for name in set(os.listdir(path)) - before:
        if name.startswith(f"{step}.orbax-checkpoint-tmp"):
            shutil.rmtree(os.path.join(path, name), ignore_errors=True)


def _complete_steps(path, what) -> list[int]:
    """The complete steps of ``path``; incomplete step folders are named in a warning."""
    steps = step_numbers(path)
    complete = [s for s in steps if not missing_items(os.path.join(path, str(s)))]
    skipped = sorted(set(steps) - set(complete))
    if skipped:
        warnings.warn(f"{what}: {path} has incomplete step folder(s) {skipped} (without "
                      f"{', '.join(missing_items(os.path.join(path, str(skipped[-1]))))}: "
                      "an interrupted copy or not a checkpoint); skipped", CheckpointWarning,
                      stacklevel=3)
    return complete


def latest_step(directory) -> int | None:
    """The newest complete step saved in ``directory``, None when it holds none (or does
    not exist). Incomplete step folders are skipped with a ``CheckpointWarning``."""
    path = directory_of(directory, "latest_step")
    complete = _complete_steps(path, "latest_step")
    return max(complete) if complete else None


def restore_checkpoint(directory, *, params, opt_state, step: int | None = None,
                       config: dict | None = None) -> Restored:
    """Step ``step`` (default: the latest complete one) of ``directory`` into the templates
    ``params`` and ``opt_state`` (``tx.init(params)``; arrays or ``jax.ShapeDtypeStruct``,
    whose shardings the restored arrays get). ``config``: the config the optimizer was
    built from, compared with the checkpoint's optimizer record. Refuses
    (``CheckpointMismatch``) a checkpoint whose optimizer, params or optimizer state
    differ, naming what differs; ``CheckpointError`` for a damaged step."""
    import orbax.checkpoint as ocp

    path = directory_of(directory, "restore_checkpoint")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"restore_checkpoint: no checkpoint directory {directory!r}")
    if step is None:
        complete = _complete_steps(path, "restore_checkpoint")
        if not complete:
            raise FileNotFoundError(f"restore_checkpoint: {directory!r} holds no complete "
                                    f"checkpoint (step folders: {step_numbers(path)})")
        step = max(complete)
    step = _check_step(step, "restore_checkpoint")
    step_dir = os.path.join(path, str(step))
    if step not in step_numbers(path):
        raise FileNotFoundError(f"restore_checkpoint: {directory!r} has no step {step}; "
                                f"saved steps: {step_numbers(path)}")
    source = f"the checkpoint {directory} step {step}"
    missing = missing_items(step_dir)
    if missing:
        found = sorted(os.listdir(step_dir))
        raise CheckpointError(f"{source} is incomplete or not an optax_selfsup checkpoint: "
                              f"it lacks {', '.join(missing)} (holds {found or 'nothing'}); "
                              "expected the items params, opt_state and extra")
    check_json_files(step_dir, source)
    check_record(read_json(os.path.join(step_dir, RECORD_ITEM, _RECORD_FILE)), config, source)
    params, opt_state = unbox(params), unbox(opt_state)
    has_extra = os.path.isdir(os.path.join(step_dir, "extra"))
    try:
        with _manager(path, create=False) as mngr:
            meta = mngr.item_metadata(step)
            check_compatible(params, meta["params"], what="params", source=source)
            check_compatible(opt_state, meta["opt_state"], source=source)
            args = dict(params=ocp.args.StandardRestore(params),
                        opt_state=ocp.args.StandardRestore(opt_state))
            if has_extra:
                args["extra"] = ocp.args.JsonRestore()
            out = mngr.restore(step, args=ocp.args.Composite(**args))
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{source}: orbax could not read it ({_first_line(err)})") \
            from err
    extra = out["extra"] if has_extra else {}
    return Restored(int(step), out["params"], out["opt_state"], dict(extra or {}))
