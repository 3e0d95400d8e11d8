"""The optimizer record of a checkpoint: which optimizer wrote the state.

An optimizer state's arrays do not say which optimizer made them: SGD and LARS with
momentum both keep one ``momentum_buffer`` per parameter, and an accumulation buffer
looks the same for every ``update_interval``. ``save_checkpoint(..., config=cfg)``
therefore writes a small JSON record next to the arrays::

    {"version": 1, "optimizer": "LARS", "update_interval": 16,
     "slots": ["momentum_buffer"], "iteration": 37}

(``optimizer.type`` and ``optimizer_config.update_interval`` of the config, for an
MMEngine config ``optim_wrapper.optimizer.type`` and ``accumulative_counts``; the slot
names the state keeps per parameter, the global iteration it was saved at) and
``restore_checkpoint(..., config=cfg)`` compares it with the config of the run that
resumes: another optimizer type is refused; another ``update_interval`` is refused when
the checkpoint was saved inside an accumulation group (its gradients were divided by
the old interval, the rest of the group would be divided by the new one) and accepted
at a group boundary. A checkpoint without a record (written before it existed) or a
call without ``config=`` is accepted with a ``CheckpointWarning`` saying what was not
checked.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from ..config.generation import MMENGINE, generation_of
from ..config.mmcv1_hooks import parse_hooks
from ..config.mmengine_wrapper import parse_wrapper
from ..errors import ConfigError
from ..pytrees import unbox
from ..transforms.accumulate import AccumulateState
from ..transforms.clocked import ClockedState
from ..transforms.flat_optimizer import FlatOptimizerState
from ..transforms.torch_optimizer import TorchOptimizerState
from .compatible import layout, slot_names
from .errors import CheckpointMismatch, CheckpointWarning

RECORD_VERSION = 1
RECORD_ITEM = "optimizer"  # the item directory of a step that holds the record


def config_summary(config) -> tuple[str, int, str]:
    """``(optimizer type, update interval, the interval's key)`` of the config the optimizer
    was built from (``config=``): 0.x ``optimizer.type`` and
    ``optimizer_config.update_interval``; MMEngine ``optim_wrapper.optimizer.type`` (the
    registered name, without its scope) and ``optim_wrapper.accumulative_counts``."""
    if isinstance(config, dict) and generation_of(config, "config=") == MMENGINE:
        settings = parse_wrapper(config["optim_wrapper"], config.get("default_scope"))
        return (settings.rule.name, settings.accumulative_counts,
                "optim_wrapper.accumulative_counts")
    optimizer = config.get("optimizer") if isinstance(config, dict) else None
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("type"), str):
        shown = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise ConfigError(f"config= must be the config dict the optimizer was built from "
                          f"(with optimizer.type, or MMEngine's optim_wrapper.optimizer."
                          f"type), got {shown}")
    return (optimizer["type"], parse_hooks(config).update_interval,
            "optimizer_config.update_interval")


def _host_int(x) -> int:
    if hasattr(x, "addressable_data"):  # a global array in a multi-host run: any local copy
        x = x.addressable_data(0)
    return int(np.asarray(x))


def _found(tree, cls) -> list:
    is_state = lambda x: isinstance(x, cls)
    return [s for s in jax.tree.leaves(unbox(tree), is_leaf=is_state) if is_state(s)]


def state_iteration(opt_state) -> int | None:
    """The global iteration an optax_selfsup state is at (the clock, else the
    accumulation count, else the optimizer's update count); None without them."""
    for cls, field in ((ClockedState, "iteration"), (AccumulateState, "count"),
                       (TorchOptimizerState, "count"), (FlatOptimizerState, "count")):
        found = _found(opt_state, cls)
        if len(found) == 1:
            return _host_int(getattr(found[0], field))
    return None


def make_record(opt_state, config=None) -> dict:
    """The record ``save_checkpoint`` writes for ``opt_state`` (``config``: see module)."""
    kind, interval, _ = config_summary(config) if config is not None else (None, None, None)
    return {"version": RECORD_VERSION, "optimizer": kind, "update_interval": interval,
            "slots": sorted(slot_names(*layout(opt_state))),
            "iteration": state_iteration(opt_state)}


def _describe(record) -> str:
    return (f"optimizer.type={record.get('optimizer')!r}, "
            f"update_interval={record.get('update_interval')}")


def check_record(record: dict | None, config, source: str, what: str = "restore_checkpoint"):
    """Refuse (``CheckpointMismatch``) or warn (``CheckpointWarning``) as the module says."""
    if record is None:
        warnings.warn(f"{what}: {source} has no optimizer record (written before "
                      "optax_selfsup saved one): its optimizer type and update_interval are "
                      "not checked against this config", CheckpointWarning, stacklevel=3)
        return
    if config is None:
        if record.get("optimizer") is not None:
            warnings.warn(f"{what}: without config= the optimizer of {source} "
                          f"({_describe(record)}) is not compared with this one; pass the "
                          "config the optimizer was built from", CheckpointWarning,
                          stacklevel=3)
        return
    kind, interval, key = config_summary(config)
    if record.get("optimizer") is None:
        warnings.warn(f"{what}: {source} was saved without config=, so its optimizer type "
                      "and update_interval are not checked against this config",
                      CheckpointWarning, stacklevel=3)
        return
    if record["optimizer"] != kind:
        raise CheckpointMismatch(
            f"{source} was written by optimizer.type={record['optimizer']!r}; this config has "
            f"optimizer.type={kind!r}: its slots ({', '.join(record.get('slots') or []) or 'none'})"
            " would be read as another optimizer's; refusing to load it")
    old, it = record.get("update_interval"), record.get("iteration")
    if old is not None and old != interval and (it is None or it % old):
        where = f"iteration {it}" if it is not None else "an unknown iteration"
        short = key.rpartition(".")[2]
        raise CheckpointMismatch(
            f"{source} was saved at {where}, inside an accumulation group of "
            f"{key}={old}; this config has {short}="
            f"{interval}: the group's gradients were divided by {old}, the rest would be "
            f"divided by {interval}. Keep {short}={old}, or resume from a checkpoint "
            f"saved at a multiple of {old}")
