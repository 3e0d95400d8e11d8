"""optax_selfsup: MMSelfSup 0.x / mmcv 1.x optimisation configs as optax transformations."""

from .clock import Clock
from .errors import ConfigError
from .registry import LR_POLICIES, MOMENTUM_POLICIES
from .schedules import Schedule, lr_schedule, momentum_schedule, parse_schedule

__all__ = [
    "Clock",
    "ConfigError",
    "LR_POLICIES",
    "MOMENTUM_POLICIES",
    "Schedule",
    "lr_schedule",
    "momentum_schedule",
    "parse_schedule",
]
