"""Torch checkpoint formats: detect which one a file is, read it into one neutral form.

``read_torch_checkpoint(path_or_dict)`` loads the file (``torch.load`` with
``weights_only=True``), asks each format's ``detect`` in ``FORMATS`` order and
hands the dict to the first match's ``read``, which returns a ``TorchRun``:
everything ``from_torch_checkpoint`` needs, in no format's own words. A second
format is one more ``(name, detect, read)`` entry.

mmcv 1.x (``mmcv.runner.save_checkpoint``): ``{'meta': {'epoch', 'iter', ...},
'state_dict', 'optimizer'}``, ``optimizer`` being ``torch.optim.Optimizer.
state_dict()`` (``state``, ``param_groups``); ``meta['iter']`` is the number of
finished iterations (mmcv's ``resume`` restarts there); mmcv's fp16 hooks keep the
``GradScaler`` state in ``meta['fp16']['loss_scaler']``.

MMEngine checkpoints (``message_hub``, ``param_schedulers``) are recognised and
refused for now: read as mmcv ones they would be misread.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .errors import TorchCheckpointError


class TorchRun(NamedTuple):
    """A torch run's position, as every format reader returns it."""

    format: str  # the FORMATS name
    source: str  # the path, or 'the checkpoint dict'
    iteration: int  # finished iterations: the global iteration the resumed run starts at
    state_dict: Mapping  # parameter name -> tensor
    param_groups: list  # torch's optimizer param_groups (dicts with 'params' indices)
    states: Mapping  # torch's optimizer state: parameter index -> {slot: tensor, 'step'}
    loss_scaler: dict | None  # GradScaler.state_dict() (scale, _growth_tracker), if saved
    meta: dict  # the format's own metadata, returned to the caller as it is


def _first_line(err) -> str:
    lines = str(err).strip().splitlines()
    line = lines[0] if lines else ""
    if len(line) > 200:  # torch's long explanations: their first sentence
        line = line.split(". ")[0][:200]
    return f"{type(err).__name__}: {line}"


def load_torch_checkpoint(path):
    """``torch.load(path, map_location='cpu', weights_only=True)``: tensors, dicts,
    numbers and strings only. A missing, damaged or unsafe file is one line naming it."""
    import pickle

    import torch

    shown = os.fspath(path)
    if not os.path.exists(shown):
        raise FileNotFoundError(f"{shown}: no such torch checkpoint file")
    if os.path.isdir(shown):
        raise TorchCheckpointError(f"{shown} is a directory; pass the .pth file")
    try:
        return torch.load(shown, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused a global: never run it
        raise TorchCheckpointError(
            f"{shown}: torch.load(weights_only=True) refused it ({_first_line(err)}); if "
            "you trust the file, load it yourself with weights_only=False and pass the "
            "dict") from None
    except Exception as err:  # a cut-short or damaged file
        raise TorchCheckpointError(
            f"{shown}: not a readable torch checkpoint ({os.path.getsize(shown)} bytes, "
            f"{_first_line(err)}): the file is truncated or damaged") from None


def _iteration(value, where: str) -> int:
    if hasattr(value, "detach") and getattr(value, "ndim", None) == 0:
        value = value.item()
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and float(value).is_integer() and value >= 0)
    if not ok:
        raise TorchCheckpointError(f"{where}={value!r} is not an iteration: it must be an "
                                   "int >= 0 (the number of finished iterations)")
    return int(value)


def _optimizer(optimizer, where: str) -> tuple[list, Mapping]:
    if not isinstance(optimizer, Mapping):
        raise TorchCheckpointError(f"{where} is a {type(optimizer).__name__}, not a torch "
                                   "optimizer state_dict ({'state', 'param_groups'})")
    for key in ("param_groups", "state"):
        if key not in optimizer:
            raise TorchCheckpointError(f"{where} has no {key!r} (keys: {sorted(optimizer)}); a "
                                       "torch optimizer state_dict has 'state' and "
                                       "'param_groups'")
    groups = optimizer["param_groups"]
    if not isinstance(groups, (list, tuple)) or not all(
            isinstance(g, Mapping) and isinstance(g.get("params"), (list, tuple))
            for g in groups):
        raise TorchCheckpointError(f"{where}['param_groups'] must be a list of dicts with a "
                                   "'params' list of parameter indices")
    if not isinstance(optimizer["state"], Mapping):
        raise TorchCheckpointError(f"{where}['state'] must be a dict (parameter index -> "
                                   f"slots), got {type(optimizer['state']).__name__}")
    return list(groups), optimizer["state"]


def detect_mmcv1(ckpt: Mapping) -> bool:
    return {"meta", "state_dict", "optimizer"} <= set(ckpt)


def read_mmcv1(ckpt: Mapping, source: str) -> TorchRun:
    meta = ckpt["meta"]
    if not isinstance(meta, Mapping):
        raise TorchCheckpointError(f"{source}: meta is a {type(meta).__name__}, not a dict")
    meta = dict(meta)
    if "iter" not in meta:
        raise TorchCheckpointError(f"{source}: meta has no 'iter' (keys: {sorted(meta)}); mmcv "
                                   "writes the number of finished iterations there")
    iteration = _iteration(meta["iter"], f"{source}: meta['iter']")
    groups, states = _optimizer(ckpt["optimizer"], f"{source}: optimizer")
    if not isinstance(ckpt["state_dict"], Mapping):
        raise TorchCheckpointError(f"{source}: state_dict is a "
                                   f"{type(ckpt['state_dict']).__name__}, not a dict")
    fp16 = meta.get("fp16") or {}
    if not isinstance(fp16, Mapping):
        raise TorchCheckpointError(f"{source}: meta['fp16'] is a {type(fp16).__name__}, not a "
                                   "dict")
    scaler = fp16.get("loss_scaler")
    if scaler is not None and not (isinstance(scaler, Mapping)
                                   and {"scale", "_growth_tracker"} <= set(scaler)):
        raise TorchCheckpointError(f"{source}: meta['fp16']['loss_scaler'] must be a "
                                   "GradScaler state_dict (with 'scale' and "
                                   "'_growth_tracker')")
    return TorchRun("mmcv1", source, iteration, ckpt["state_dict"], groups, states,
                    None if scaler is None else dict(scaler), meta)


def detect_mmengine(ckpt: Mapping) -> bool:
    return "message_hub" in ckpt or "param_schedulers" in ckpt


def read_mmengine(ckpt: Mapping, source: str) -> TorchRun:
    found = ", ".join(k for k in ("message_hub", "param_schedulers") if k in ckpt)
    raise TorchCheckpointError(f"{source} is an MMEngine checkpoint (it has {found}); only "
                               "mmcv 1.x checkpoints (meta, state_dict, optimizer) are read "
                               "so far")


# (name, detect, read), asked in order: the first format whose detect(ckpt) holds reads it
FORMATS: list[tuple[str, Callable[[Mapping], bool], Callable[[Mapping, str], TorchRun]]] = [
    ("mmengine", detect_mmengine, read_mmengine),
    ("mmcv1", detect_mmcv1, read_mmcv1),
]


def read_torch_checkpoint(path_or_checkpoint: Any) -> TorchRun:
    """The ``TorchRun`` of a checkpoint file or an already loaded checkpoint dict."""
    if isinstance(path_or_checkpoint, (str, os.PathLike)):
        source = os.fspath(path_or_checkpoint)
        ckpt = load_torch_checkpoint(source)
    else:
        source, ckpt = "the checkpoint dict", path_or_checkpoint
    if not isinstance(ckpt, Mapping):
        raise TorchCheckpointError(f"{source} holds a {type(ckpt).__name__}, not a checkpoint "
                                   "dict")
    for _, detect, read in FORMATS:
        if detect(ckpt):
            return read(ckpt, source)
    raise TorchCheckpointError(f"{source}: not an mmcv checkpoint (keys: {sorted(ckpt)}); "
                               "expected meta, state_dict, optimizer")
