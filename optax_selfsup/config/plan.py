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
    # the torch param groups: leaf i is in group ``group_of[i]`` (0 <= g < num_groups),
    # groups numbered in the order torch builds them. Per-group schedule options (OneCycle's
    # max_lr, base_momentum / max_momentum lists) have one value per group. MMSelfSup 0.x
    # makes one group per parameter (group_of = 0..n-1); MMEngine makes one group for all
    # without paramwise_cfg ([0] * n, num_groups 1)
    group_of: list[int]
    num_groups: int
    lr_schedule: Schedule | None
    momentum_schedule: Schedule | None
    hooks: HookSettings
    simsiam: SimSiamSettings | None

    def __post_init__(self):
        n = len(self.names)
        if len(self.group_of) != n or not all(0 <= g < self.num_groups for g in self.group_of):
            raise ValueError(f"Plan.group_of must give each of the {n} leaves a group in "
                             f"0..{self.num_groups - 1}, got {self.group_of}")
