"""optax_selfsup: MMSelfSup 0.x / mmcv 1.x optimisation configs as optax transformations."""

from .builder import build_optimizer
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
from .transforms.torch_optimizer import TorchOptimizerState, current_hparams

__all__ = [
    "Clock", "ConfigError", "build_optimizer", "LR_POLICIES", "MOMENTUM_POLICIES", "OPTIMIZERS",
    "REQUIRED",
    "Schedule", "TorchOptimizerState", "adadelta", "adagrad", "adam", "adamax", "adamw", "asgd",
    "current_hparams", "lars", "lr_schedule", "momentum_schedule", "nadam", "parse_schedule",
    "radam", "register_optimizer", "rmsprop", "rprop", "sgd", "torch_optimizer",
]
