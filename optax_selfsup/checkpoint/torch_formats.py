"""Torch checkpoint formats: detect which one a file is, read it into one neutral form.

``read_torch_checkpoint(path_or_dict)`` loads the file (``torch.load`` with
``weights_only=True``), asks each format's ``detect`` in ``FORMATS`` order and
hands the dict to the first match's ``read``, which returns a ``TorchRun``
(``torch_run.py``): everything ``from_torch_checkpoint`` needs, in no format's own
words. A further format is one more ``(name, detect, read)`` entry.

- MMEngine (``mmengine_format.py``): ``message_hub`` or ``param_schedulers`` next to
  ``meta``, ``state_dict``, ``optimizer``. Its message hub needs a few inert stand-ins
  to load with ``weights_only=True`` (``mmengine_format.message_hub_globals``); they
  are allowed only when nothing else in the file needs more (a refusal names what).
- mmcv 1.x (``mmcv.runner.save_checkpoint``): ``{'meta': {'epoch', 'iter', ...},
  'state_dict', 'optimizer'}``, ``optimizer`` being ``torch.optim.Optimizer.
  state_dict()`` (``state``, ``param_groups``); ``meta['iter']`` is the number of
  finished iterations (mmcv's ``resume`` restarts there); mmcv's fp16 hooks keep the
  ``GradScaler`` state in ``meta['fp16']['loss_scaler']``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import TorchCheckpointError
from .mmengine_format import detect_mmengine, message_hub_globals, message_hub_names, read_mmengine
from .torch_run import TorchRun, iteration, optimizer_parts, state_dict_of

__all__ = ["FORMATS", "TorchRun", "load_torch_checkpoint", "read_torch_checkpoint"]


def _first_line(err) -> str:
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines()  # no terminal codes
    line = lines[0] if lines else ""
    if len(line) > 200:  # torch's long explanations: their first sentence
        line = line.split(". ")[0][:200]
    return f"{type(err).__name__}: {line}"


def _unsafe_globals(path) -> set | None:
    """The globals ``weights_only`` refuses in ``path`` (None where torch cannot tell)."""
    import torch

    try:
        return set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # an older torch, or a file it cannot scan
        return None


def load_torch_checkpoint(path):
    """``torch.load(path, map_location='cpu', weights_only=True)``: tensors, dicts,
    numbers and strings only (and, in an MMEngine checkpoint's message hub, its logged
    scalars as inert stand-ins). A missing, damaged or unsafe file is one line naming it."""
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
        unsafe = _unsafe_globals(shown)
        if unsafe and unsafe <= message_hub_names():  # MMEngine's message hub: inert stand-ins
            with torch.serialization.safe_globals(message_hub_globals()):
                return torch.load(shown, map_location="cpu", weights_only=True)
        why = (f"it needs {', '.join(sorted(unsafe - message_hub_names()))}" if unsafe
               else _first_line(err))
        raise TorchCheckpointError(
            f"{shown}: torch.load(weights_only=True) refused it ({why}); if you trust the "
            "file, load it yourself with weights_only=False and pass the dict") from None
    except Exception as err:  # a cut-short or damaged file
        raise TorchCheckpointError(
            f"{shown}: not a readable torch checkpoint ({os.path.getsize(shown)} bytes, "
            f"{_first_line(err)}): the file is truncated or damaged") from None


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
    it = iteration(meta["iter"], f"{source}: meta['iter']")
    groups, states = optimizer_parts(ckpt["optimizer"], f"{source}: optimizer")
    state_dict = state_dict_of(ckpt, source)
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
    return TorchRun("mmcv1", source, it, state_dict, groups, states,
                    None if scaler is None else dict(scaler), meta)


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
    raise TorchCheckpointError(f"{source}: neither an mmcv nor an MMEngine checkpoint (keys: "
                               f"{sorted(ckpt)}); expected meta, state_dict, optimizer (and, "
                               "from MMEngine, message_hub, param_schedulers)")
