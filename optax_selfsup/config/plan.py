"""The plan: everything a config decides, per parameter and for the run.

Each generation's reader (``mmcv1.py`` for MMSelfSup 0.x, ``mmengine.py`` for
MMSelfSup 1.x / MMPretrain 1.x) turns its config keys into a ``Plan`` and refuses
what is wrong there; the builder (``optax_selfsup/builder.py``) turns a plan into
one optax transformation and never reads a config key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..transforms.grad_clip import GradClip
from ..transforms.rule import Rule
from .mmcv1_hooks import HookSettings

#: The hyperparameters a schedule can move (``Plan.schedules`` keys).
SCHEDULED = ("lr", "momentum", "weight_decay")


@dataclasses.dataclass
class Plan:
    """Everything a config decides, per parameter and for the run."""

    names: list[str]  # torch-style leaf names, in the params' leaf order
    rule: Rule
    # the run length: an object with ``max_iters`` and ``steps_per_epoch`` (mmcv1: a
    # ``Clock``, MMEngine: a ``TrainLoop``); None when planned without schedules (describe)
    clock: Any
    hparams: list[dict]  # per leaf: the optimizer's keyword arguments (the group's bases)
    fix_lr: list[bool]  # per leaf: the group has fix_lr=True (SimSiamHook)
    frozen_until: list[int]  # per leaf: no gradient at iterations below this (0: never)
    # the torch param groups: leaf i is in group ``group_of[i]`` (0 <= g < num_groups),
    # groups numbered in the order torch builds them. Per-group schedule options (OneCycle's
    # max_lr, base_momentum / max_momentum lists) have one value per group. MMSelfSup 0.x
    # makes one group per parameter (group_of = 0..n-1); MMEngine makes one group for all
    # without paramwise_cfg ([0] * n, num_groups 1), else one per parameter in its order
    group_of: list[int]
    num_groups: int
    # per hyperparameter name ('lr', 'momentum', 'weight_decay'): the schedule of the
    # global iteration in ``torch_optimizer``'s protocol, or absent (the base holds)
    schedules: dict = dataclasses.field(default_factory=dict)
    clip: GradClip | None = None  # the gradient clip before each step
    update_interval: int = 1  # micro-batches per update (gradient accumulation)
    flush_remainder: bool = True  # the last max_iters % k micro-batches form a final update
    loss_scale: dict | None = None  # ``dynamic_loss_scale`` arguments (fp16 / AMP)
    # ``(per-leaf fixed flags, value, active(it))``: the lr a hook fixes while it holds
    # (MMSelfSup 0.x SimSiamHook; MMEngine's is a hook write inside the lr schedule)
    lr_override: tuple[list[bool], float, Callable] | None = None
    generation: str = "mmcv1"  # 'mmcv1' or 'mmengine'
    # per leaf: group keys describe shows beyond the optimizer's arguments (MMEngine:
    # lr_mult, decay_mult, layer_id, lr_scale, ... as the constructor copied them)
    group_keys: list[dict] | None = None
    frozen_layers: dict = dataclasses.field(default_factory=dict)  # as configured

    def __post_init__(self):
        n = len(self.names)
        if len(self.group_of) != n or not all(0 <= g < self.num_groups for g in self.group_of):
            raise ValueError(f"Plan.group_of must give each of the {n} leaves a group in "
                             f"0..{self.num_groups - 1}, got {self.group_of}")
        unknown = [k for k in self.schedules if k not in SCHEDULED]
        if unknown:
            raise ValueError(f"Plan.schedules: {unknown} are not among {SCHEDULED}")

    @property
    def lr_schedule(self):
        return self.schedules.get("lr")

    @property
    def momentum_schedule(self):
        return self.schedules.get("momentum")

    @property
    def max_iters(self) -> int | None:
        return None if self.clock is None else self.clock.max_iters

    @property
    def hooks(self) -> HookSettings:
        """The run-wide settings in the 0.x reader's shape (``update_interval``,
        ``flush_remainder``, ``grad_clip`` as ``(max_norm, norm_type)``, ``loss_scale``)."""
        clip = self.clip
        grad_clip = (clip.max_norm, clip.norm_type) if clip is not None and \
            clip.kind == "norm" else None
        return HookSettings(self.update_interval, self.flush_remainder, grad_clip,
                            dict(self.frozen_layers), self.loss_scale)
