"""A torch run's position in no format's own words, and the checks every format shares.

``TorchRun`` is what each reader of ``torch_formats.FORMATS`` returns and what
``from_torch_checkpoint`` continues from. ``iteration`` and ``optimizer_parts`` validate
the pieces every torch checkpoint has (a count of finished iterations, a
``torch.optim.Optimizer.state_dict()``), naming the key that is wrong.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import NamedTuple

from .errors import TorchCheckpointError


class TorchRun(NamedTuple):
    """A torch run's position, as every format reader returns it."""

    format: str  # the FORMATS name: 'mmcv1' or 'mmengine'
    source: str  # the path, or 'the checkpoint dict'
    iteration: int  # finished iterations: the global iteration the resumed run starts at
    state_dict: Mapping  # parameter name -> tensor
    param_groups: list  # torch's optimizer param_groups (dicts with 'params' indices)
    states: Mapping  # torch's optimizer state: parameter index -> {slot: tensor, 'step'}
    loss_scaler: dict | None  # GradScaler.state_dict() (scale, _growth_tracker), if saved
    meta: dict  # the format's own metadata, returned to the caller as it is
    scaler_key: str = "meta['fp16']['loss_scaler']"  # where the format keeps the scaler
    epoch: int | None = None  # MMEngine: meta['epoch'] (the loop's epoch counter)
    schedulers: list | None = None  # MMEngine: the param schedulers' state dicts
    run_length: tuple | None = None  # MMEngine: (max_iters, max_epochs) of the message hub


def iteration(value, where: str) -> int:
    """``value`` as a count of finished iterations (an int >= 0), else one line naming it."""
    if hasattr(value, "detach") and getattr(value, "ndim", None) == 0:
        value = value.item()
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and float(value).is_integer() and value >= 0)
    if not ok:
        raise TorchCheckpointError(f"{where}={value!r} is not an iteration: it must be an "
                                   "int >= 0 (the number of finished iterations)")
    return int(value)


def optimizer_parts(optimizer, where: str) -> tuple[list, Mapping]:
    """``(param_groups, state)`` of a torch optimizer ``state_dict``, checked."""
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
    for index, slots in optimizer["state"].items():
        if not isinstance(slots, Mapping):
            raise TorchCheckpointError(f"{where}['state'][{index!r}] is a "
                                       f"{type(slots).__name__}, not a dict of slots "
                                       "(momentum_buffer, exp_avg, ..., step)")
    return list(groups), optimizer["state"]


def state_dict_of(ckpt: Mapping, source: str) -> Mapping:
    state_dict = ckpt["state_dict"]
    if not isinstance(state_dict, Mapping):
        raise TorchCheckpointError(f"{source}: state_dict is a {type(state_dict).__name__}, "
                                   "not a dict")
    return state_dict
