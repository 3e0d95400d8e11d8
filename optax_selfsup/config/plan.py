"""The plan: everything a config decides, per parameter and for the run.

Each generation's reader (``mmcv1.py``) turns its config keys into a ``Plan``
and refuses what is wrong there; the builder (``optax_selfsup/builder.py``)
turns a plan into one optax transformation and never reads a config key.
"""

from __future__ import annotations

import dataclasses

from ..schedules.clock import Clock
from ..schedules.schedule import Schedule
from ..transforms.rule import Rule
from .mmcv1_hooks import HookSettings, SimSiamSettings


@dataclasses.dataclass
class Plan:
    """Everything a config decides, per parameter and for the run."""

    names: list[str]
    rule: Rule
    clock: Clock | None  # None when planned without schedules (describe)
    hparams: list[dict]  # per leaf: the optimizer's keyword arguments
    fix_lr: list[bool]
    frozen_until: list[int]
    grouped: bool  # one param group per parameter (paramwise options given)
    lr_schedule: Schedule | None
    momentum_schedule: Schedule | None
    hooks: HookSettings
    simsiam: SimSiamSettings | None
