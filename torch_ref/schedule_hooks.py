"""mmcv 1.7 lr and momentum updater hooks, in plain Python floats (float64).

This is the reference: it follows upstream's stateful hook structure literally
(``before_run`` records the base values, ``before_train_epoch`` sets the
by-epoch regular value, ``before_train_iter`` sets warmup / by-iteration values)
and shares no code with ``optax_selfsup``. A "runner" is anything with
``epoch``, ``iter``, ``max_epochs``, ``max_iters``, ``steps_per_epoch`` and a
torch ``optimizer``.
"""

from __future__ import annotations

import math


def annealing_cos(start, end, factor, weight=1.0):
    return end + 0.5 * weight * (start - end) * (math.cos(math.pi * factor) + 1)


def annealing_linear(start, end, factor):
    return start + (end - start) * factor


ANNEAL = {"cos": annealing_cos, "linear": annealing_linear}


class ParamGroupHook:
    """Shared mechanics of mmcv's LrUpdaterHook and MomentumUpdaterHook."""

    warmup_default_ratio = 0.1

    def __init__(self, by_epoch=True, warmup=None, warmup_iters=0, warmup_ratio=None,
                 warmup_by_epoch=False):
        if warmup_ratio is None:
            warmup_ratio = self.warmup_default_ratio
        assert warmup in (None, "constant", "linear", "exp"), warmup
        if warmup is not None:
            assert warmup_iters > 0 and 0 < warmup_ratio <= 1.0
        self.by_epoch = by_epoch
        self.warmup = warmup
        self.warmup_ratio = warmup_ratio
        self.warmup_by_epoch = warmup_by_epoch
        self.warmup_epochs = warmup_iters if warmup_by_epoch else None
        self.warmup_iters = None if warmup_by_epoch else warmup_iters
        self.regular = None

    # --- per-kind plumbing (lr or momentum) ---
    def read(self, group):
        raise NotImplementedError

    def write(self, group, value):
        raise NotImplementedError

    def get_value(self, runner, base):
        raise NotImplementedError

    def warm(self, cur_iter, value):
        raise NotImplementedError

    # --- mmcv's hook order ---
    def before_run(self, runner):
        self.base = [self.read(g) for g in runner.optimizer.param_groups]

    def regular_values(self, runner):
        return [self.get_value(runner, b) for b in self.base]

    def set_all(self, runner, values):
        for group, value in zip(runner.optimizer.param_groups, values):
            self.write(group, value)

    def before_train_epoch(self, runner):
        if self.warmup_iters is None:
            self.warmup_iters = self.warmup_epochs * runner.steps_per_epoch
        if not self.by_epoch:
            return
        self.regular = self.regular_values(runner)
        self.set_all(runner, self.regular)

    def before_train_iter(self, runner):
        cur = runner.iter
        if not self.by_epoch:
            self.regular = self.regular_values(runner)
            if self.warmup is None or cur >= self.warmup_iters:
                self.set_all(runner, self.regular)
            else:
                self.set_all(runner, [self.warm(cur, v) for v in self.regular])
        else:
            if self.warmup is None or cur > self.warmup_iters:
                return
            if cur == self.warmup_iters:
                self.set_all(runner, self.regular)
            else:
                self.set_all(runner, [self.warm(cur, v) for v in self.regular])

    def after_train_iter(self, runner):
        pass

    @staticmethod
    def progress(hook, runner):
        if hook.by_epoch:
            return runner.epoch, runner.max_epochs
        return runner.iter, runner.max_iters


class LrHook(ParamGroupHook):
    priority = 10  # VERY_HIGH
    warmup_default_ratio = 0.1

    def read(self, group):
        group.setdefault("initial_lr", group["lr"])
        return group["initial_lr"]

    def write(self, group, value):
        group["lr"] = value

    def warm(self, cur_iter, value):
        if self.warmup == "constant":
            return value * self.warmup_ratio
        if self.warmup == "linear":
            k = (1 - cur_iter / self.warmup_iters) * (1 - self.warmup_ratio)
            return value * (1 - k)
        return value * self.warmup_ratio ** (1 - cur_iter / self.warmup_iters)


class MomentumHook(ParamGroupHook):
    priority = 30  # HIGH
    warmup_default_ratio = 0.9

    def __init__(self, by_epoch=True, warmup=None, warmup_iters=0, warmup_ratio=None):
        super().__init__(by_epoch, warmup, warmup_iters, warmup_ratio, False)

    def read(self, group):
        if "momentum" in group:
            group.setdefault("initial_momentum", group["momentum"])
        else:
            group.setdefault("initial_momentum", group["betas"][0])
        return group["initial_momentum"]

    def write(self, group, value):
        if "momentum" in group:
            group["momentum"] = value
        else:
            group["betas"] = (value, group["betas"][1])

    def warm(self, cur_iter, value):
        if self.warmup == "constant":
            return value / self.warmup_ratio
        if self.warmup == "linear":
            k = (1 - cur_iter / self.warmup_iters) * (1 - self.warmup_ratio)
            return value / (1 - k)
        return value / self.warmup_ratio ** (1 - cur_iter / self.warmup_iters)
