"""lr and momentum schedules as pure functions of the global iteration, on one clock."""

from .clock import Clock
from .mmengine import MMEngineSchedules, ParamSchedule, parse_param_scheduler
from .mmengine_loop import HookWrite, TrainLoop
from .mmengine_parse import SchedulerWarning
from .schedule import Schedule, lr_schedule, momentum_schedule, parse_schedule

__all__ = ["Clock", "HookWrite", "MMEngineSchedules", "ParamSchedule", "Schedule",
           "SchedulerWarning", "TrainLoop", "lr_schedule", "momentum_schedule",
           "parse_param_scheduler", "parse_schedule"]
