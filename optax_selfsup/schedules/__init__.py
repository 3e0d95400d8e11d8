"""lr and momentum schedules as pure functions of the global iteration, on one clock."""

from .clock import Clock
from .schedule import Schedule, lr_schedule, momentum_schedule, parse_schedule

__all__ = ["Clock", "Schedule", "lr_schedule", "momentum_schedule", "parse_schedule"]
