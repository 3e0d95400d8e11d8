"""An MMEngine ``param_scheduler`` schedule as the optimizer's per-leaf schedule.

``torch_optimizer`` evaluates a schedule once per distinct key of its leaves:
``schedule.base_value(base, group)`` gives each leaf's key, the distinct keys are
stacked and ``schedule(it, keys)`` returns one value per key. An MMEngine
``ParamSchedule`` (``mmengine.py``) computes the values of all param groups from
their bases; groups touched by a hook write (SimSiamHook's ``fix_lr`` groups) or a
per-group OneCycle ``eta_max`` follow their own variant of the schedule. So the
key of a leaf is ``(its group's base, its group's variant)``: leaves with equal keys
get equal values, and the schedule runs once per distinct key, not per group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .mmengine import ParamSchedule


class GroupSchedule:
    """``ParamSchedule`` of one hyperparameter for param groups with bases ``group_bases``
    (one per group, in group order), in ``torch_optimizer``'s schedule protocol."""

    def __init__(self, schedule: ParamSchedule, group_bases: Sequence[float]):
        self.schedule = schedule
        self.param_name = schedule.param_name
        self.group_bases = np.asarray(group_bases, np.float64)
        signature = schedule.signature
        if signature is not None and len(signature) != len(self.group_bases):
            raise ValueError(f"GroupSchedule: {len(self.group_bases)} group bases for a "
                             f"schedule of {len(signature)} param groups")
        self.variant = (np.zeros(len(self.group_bases), np.int64) if signature is None
                        else np.asarray(signature, np.int64))

    def base_value(self, value, group: int):
        """The key of a leaf of ``group`` whose base is ``value`` (the group's own base)."""
        if float(value) != self.group_bases[group]:
            raise ValueError(f"GroupSchedule({self.param_name!r}): a leaf of group {group} has "
                             f"base {value!r}, the group {self.group_bases[group]!r}")
        return float(value), float(self.variant[group])

    def per_group_options(self) -> dict:
        return {}  # per-group values live in the schedule's variants

    def __call__(self, it, keys):
        values, variants = keys
        if self.schedule.signature is None:  # every group follows the same rule
            return self.schedule(it, np.asarray(values, np.float64))
        first = {}
        for g, key in enumerate(zip(self.group_bases.tolist(), self.variant.tolist())):
            first.setdefault(key, g)
        rows = np.asarray([first[(float(v), int(s))] for v, s in zip(values, variants)])
        return self.schedule(it, self.group_bases)[..., rows]
