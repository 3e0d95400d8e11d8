"""torch_ref: the PyTorch reference for optax_selfsup (mmcv 1.x / MMSelfSup 0.x semantics).

Independent of optax_selfsup: it shares no code with it, so a bug cannot hide in both.
"""

from .builder import OPTIMIZERS, Built, Runner, build, build_torch_optimizer, register_optimizer
from .hooks import OptimizerHook, SimSiamHook
from .lars import LARS
from .policies import build_schedule_hook
from .runner import ScheduleRunner

__all__ = ["LARS", "OPTIMIZERS", "Built", "OptimizerHook", "Runner", "ScheduleRunner",
           "SimSiamHook", "build", "build_schedule_hook", "build_torch_optimizer",
           "register_optimizer"]
