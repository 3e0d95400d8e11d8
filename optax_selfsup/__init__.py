"""optax_selfsup: MMSelfSup 0.x / mmcv 1.x optimisation configs as optax transformations."""

from .builder import build_optimizer, describe, format_table, plan_optimizer
from .clock import Clock
from .config import load_config, merge_options
from .errors import ConfigError
from .masks import paramwise_values, regex_mask
from .names import leaf_names, nest_names, torch_names
from .optimizers import (
    REQUIRED,
    adadelta,
    adagrad,
    adam,
    adamax,
    adamw,
    asgd,
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
from .pytrees import unbox
from .registry import LR_POLICIES, MOMENTUM_POLICIES, OPTIMIZERS
from .schedules import Schedule, lr_schedule, momentum_schedule, parse_schedule
from .state import current_hparams, group_values, has_updated, iteration, loss_scale
from .transforms.accumulate import Accumulate, AccumulateState, accumulate
from .transforms.clip import clip_grad_norm
from .transforms.clocked import clocked
from .transforms.frozen import skip_frozen
from .transforms.lars import scale_by_lars
from .transforms.loss_scale import dynamic_loss_scale
from .transforms.torch_optimizer import TorchOptimizerState

__all__ = [
    "Accumulate", "AccumulateState", "group_values", "has_updated", "iteration",
    "optimizer_factory", "paramwise_values", "regex_mask", "scale_by_lars", "unbox",
    "accumulate", "adadelta", "adagrad", "adam", "adamax", "adamw", "asgd", "build_optimizer",
    "clip_grad_norm", "Clock", "clocked", "ConfigError", "current_hparams", "describe",
    "dynamic_loss_scale", "format_table", "lars", "leaf_names", "load_config", "loss_scale",
    "LR_POLICIES", "lr_schedule", "merge_options", "MOMENTUM_POLICIES", "momentum_schedule",
    "nadam", "nest_names", "OPTIMIZERS", "parse_schedule", "plan_optimizer", "radam",
    "register_optimizer", "REQUIRED", "rmsprop", "rprop", "Schedule", "sgd", "skip_frozen",
    "torch_names", "torch_optimizer", "TorchOptimizerState",
]
