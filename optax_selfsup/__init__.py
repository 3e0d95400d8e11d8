"""optax_selfsup: MMSelfSup / MMPretrain optimisation configs (mmcv 1.x and MMEngine) as optax
transformations.

The public names below are imported on first use (``oss.build_optimizer``,
``from optax_selfsup import describe``): ``import optax_selfsup`` stays cheap and
does not import jax, so the command line's ``--help`` is instant. To export a
name, add its ``from .module import name`` line to the ``TYPE_CHECKING`` block
(type checkers and IDEs read it; ``__getattr__`` below reads the same lines) and
the name to ``__all__``.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .builder import build_optimizer, describe, flat_layout, format_table, plan_optimizer
    from .checkpoint.convert import convert_state
    from .checkpoint.errors import CheckpointError, CheckpointWarning
    from .checkpoint.from_torch import TorchCheckpointError, from_torch_checkpoint
    from .checkpoint.orbax import (
        CheckpointMismatch,
        check_compatible,
        latest_step,
        restore_checkpoint,
        save_checkpoint,
        state_from_raw,
    )
    from .checkpoint.tensor_layouts import flax_to_torch_layout, torch_to_flax_layout
    from .config.cfg_options import merge_options
    from .config.files import load_config
    from .errors import ConfigError
    from .layout import Flat, FlatLayout
    from .names import flax_resnet_name_map, leaf_names, nest_names, torch_names
    from .optimizers import (
        REQUIRED,
        adadelta,
        adagrad,
        adam,
        adamax,
        adamw,
        asgd,
        lamb,
        lars,
        nadam,
        optimizer_factory,
        radam,
        register_optimizer,
        rmsprop,
        rprop,
        sgd,
        torch_optimizer,
    )
    from .paramwise.masks import paramwise_values, regex_mask
    from .paramwise.norm_layers import NormLayerWarning
    from .pytrees import unbox
    from .registry import LR_POLICIES, MOMENTUM_POLICIES, OPTIMIZERS
    from .schedules.clock import Clock
    from .schedules.schedule import Schedule, lr_schedule, momentum_schedule, parse_schedule
    from .state import (
        current_hparams,
        flat_layout_of,
        group_values,
        has_updated,
        iteration,
        loss_scale,
    )
    from .transforms.accumulate import Accumulate, AccumulateState, LossDivisorState, accumulate
    from .transforms.clip import clip_grad_norm
    from .transforms.clocked import clocked
    from .transforms.flat_optimizer import FlatOptimizerState
    from .transforms.frozen import skip_frozen
    from .transforms.in_place import nnx_update, update_and_apply
    from .transforms.lars import scale_by_lars
    from .transforms.loss_scale import dynamic_loss_scale
    from .transforms.rule import tensor_norm
    from .transforms.torch_optimizer import TorchOptimizerState

__all__ = [
    "Accumulate", "AccumulateState", "LossDivisorState", "group_values", "has_updated", "iteration",
    "flax_resnet_name_map", "NormLayerWarning", "optimizer_factory", "paramwise_values",
    "regex_mask", "scale_by_lars", "unbox", "update_and_apply", "nnx_update",
    "accumulate", "adadelta", "adagrad", "adam", "adamax", "adamw", "asgd", "build_optimizer",
    "clip_grad_norm", "Clock", "clocked", "ConfigError", "current_hparams", "describe",
    "dynamic_loss_scale", "format_table", "lamb", "lars", "leaf_names", "load_config", "loss_scale",
    "LR_POLICIES", "lr_schedule", "merge_options", "MOMENTUM_POLICIES", "momentum_schedule",
    "nadam", "nest_names", "OPTIMIZERS", "parse_schedule", "plan_optimizer", "radam",
    "register_optimizer", "REQUIRED", "rmsprop", "rprop", "Schedule", "sgd", "skip_frozen",
    "torch_names", "torch_optimizer", "TorchOptimizerState",
    "CheckpointMismatch", "check_compatible", "latest_step", "restore_checkpoint",
    "save_checkpoint", "state_from_raw", "TorchCheckpointError", "from_torch_checkpoint",
    "CheckpointError", "CheckpointWarning", "torch_to_flax_layout", "flax_to_torch_layout",
    "convert_state", "Flat", "FlatLayout", "FlatOptimizerState", "flat_layout", "flat_layout_of",
    "tensor_norm",
]



def _lazy_names() -> dict:
    """``{name: (module, attribute)}`` from the ``from .x import y`` lines of the
    ``TYPE_CHECKING`` block of this file: the one list of exports."""
    import ast

    source = __loader__.get_source(__name__)
    if source is None:  # pragma: no cover - a distribution without sources
        raise ImportError(f"{__name__}: the source of {__file__} is needed for its exports")
    table = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.level == 1:
                    for alias in stmt.names:
                        table[alias.asname or alias.name] = (stmt.module, alias.name)
    return table


_LAZY: dict = {}


def _version() -> str:
    """The version of this copy of optax_selfsup: a source checkout's pyproject.toml (also
    under an editable install, whose metadata may predate the checkout), else the installed
    distribution's metadata (a wheel), else '0+unknown'."""
    import os
    import re

    pyproject = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "pyproject.toml")
    try:
        with open(pyproject, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        text = ""
    project = re.search(r"^\[project\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if project and re.search(r'^name\s*=\s*"optax[_-]selfsup"', project.group(1), re.M):
        version = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.M)
        if version:
            return version.group(1)
    from importlib import metadata

    try:
        return metadata.version("optax_selfsup")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str):
    import importlib
    import importlib.util

    if name == "__version__":
        globals()[name] = value = _version()
        return value
    if not _LAZY:
        _LAZY.update(_lazy_names())
        # importing this module registers the built-in optimizers (LARS, SGD, Adam, ...)
        importlib.import_module(".optimizers", __name__)
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attribute)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    spec = None if name.startswith("_") else importlib.util.find_spec(f"{__name__}.{name}")
    if spec is not None and spec.origin is not None:  # not configs/, a folder of data
        return importlib.import_module(f".{name}", __name__)  # oss.models, oss.transforms ...
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | {"__version__"})
