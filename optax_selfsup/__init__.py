"""optax_selfsup: MMSelfSup 0.x / mmcv 1.x optimisation configs as optax transformations."""

from .builder import build_optimizer, describe, format_table, plan_optimizer
from .clock import Clock
from .errors import ConfigError
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
    radam,
    register_optimizer,
    rmsprop,
    rprop,
    sgd,
    torch_optimizer,
)
from .registry import LR_POLICIES, MOMENTUM_POLICIES, OPTIMIZERS
from .schedules import Schedule, lr_schedule, momentum_schedule, parse_schedule
from .state import current_hparams, loss_scale
from .transforms.accumulate import accumulate
from .transforms.clip import clip_grad_norm
from .transforms.clocked import clocked
from .transforms.frozen import skip_frozen
from .transforms.loss_scale import dynamic_loss_scale
from .transforms.torch_optimizer import TorchOptimizerState

__all__ = [
    "Clock", "ConfigError", "build_optimizer", "describe", "format_table", "plan_optimizer",
    "LR_POLICIES", "MOMENTUM_POLICIES", "OPTIMIZERS",
    "REQUIRED",
    "Schedule", "TorchOptimizerState", "adadelta", "adagrad", "adam", "adamax", "adamw", "asgd",
    "current_hparams", "loss_scale", "accumulate", "clip_grad_norm", "clocked", "skip_frozen",
    "dynamic_loss_scale", "lars", "lr_schedule", "momentum_schedule", "nadam", "parse_schedule",
    "radam", "register_optimizer", "rmsprop", "rprop", "sgd", "torch_optimizer",
]
