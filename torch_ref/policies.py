"""The mmcv 1.7 / MMSelfSup 0.x policies as hook classes (plain Python floats).

Each policy is a mixin with ``get_value(runner, base)``; it is combined with
``LrHook`` or ``MomentumHook`` to give e.g. ``CosineAnnealingLrUpdaterHook``.
"""

from __future__ import annotations

from .schedule_hooks import ANNEAL, LrHook, MomentumHook, ParamGroupHook, annealing_cos


class _Target:
    def _init_target(self, kw):
        k = self.kind
        self.min_value = kw.pop(f"min_{k}", None)
        self.min_ratio = kw.pop(f"min_{k}_ratio", None)
        assert (self.min_value is None) ^ (self.min_ratio is None)

    def target(self, base):
        return base * self.min_ratio if self.min_ratio is not None else self.min_value


class Fixed:
    def __init__(self, **kw):
        super().__init__(**kw)

    def get_value(self, runner, base):
        return base


class Step:
    def __init__(self, step, gamma=None, **kw):
        self.minimum = kw.pop(f"min_{self.kind}", None)
        self.step = step
        self.gamma = gamma if gamma is not None else (0.1 if self.kind == "lr" else 0.5)
        super().__init__(**kw)

    def get_value(self, runner, base):
        progress = runner.epoch if self.by_epoch else runner.iter
        if isinstance(self.step, int):
            exp = progress // self.step
        else:
            exp = len(self.step)
            for i, s in enumerate(self.step):
                if progress < s:
                    exp = i
                    break
        value = base * self.gamma**exp
        if self.minimum is not None:
            value = max(value, self.minimum)
        return value


class Exp:
    def __init__(self, gamma, **kw):
        self.gamma = gamma
        super().__init__(**kw)

    def get_value(self, runner, base):
        progress = runner.epoch if self.by_epoch else runner.iter
        return base * self.gamma**progress


class Poly:
    def __init__(self, power=1.0, min_lr=0.0, **kw):
        self.power, self.min_lr = power, min_lr
        super().__init__(**kw)

    def get_value(self, runner, base):
        progress, max_progress = ParamGroupHook.progress(self, runner)
        coeff = (1 - progress / max_progress) ** self.power
        return (base - self.min_lr) * coeff + self.min_lr


class Inv:
    def __init__(self, gamma, power=1.0, **kw):
        self.gamma, self.power = gamma, power
        super().__init__(**kw)

    def get_value(self, runner, base):
        progress = runner.epoch if self.by_epoch else runner.iter
        return base * (1 + self.gamma * progress) ** (-self.power)


class CosineAnnealing(_Target):
    def __init__(self, **kw):
        self._init_target(kw)
        super().__init__(**kw)

    def get_value(self, runner, base):
        progress, max_progress = ParamGroupHook.progress(self, runner)
        return annealing_cos(base, self.target(base), progress / max_progress)


class LinearAnnealing(CosineAnnealing):
    def get_value(self, runner, base):
        progress, max_progress = ParamGroupHook.progress(self, runner)
        return ANNEAL["linear"](base, self.target(base), progress / max_progress)


class StepFixCosineAnnealing(CosineAnnealing):
    def get_value(self, runner, base):
        progress, max_progress = ParamGroupHook.progress(self, runner)
        if self.warmup is not None:
            shift = self.warmup_iters // runner.steps_per_epoch if self.by_epoch else \
                self.warmup_iters
            progress, max_progress = progress - shift, max_progress - shift
        return annealing_cos(base, self.target(base), progress / max_progress)

    def warm(self, cur_iter, value):
        if self.warmup == "linear":
            return value * (1 - (1 - cur_iter / self.warmup_iters))
        return super().warm(cur_iter, value)


class FlatCosineAnnealing(CosineAnnealing):
    def __init__(self, start_percent=0.75, **kw):
        assert isinstance(start_percent, float) and 0 <= start_percent <= 1
        self.start_percent = start_percent
        super().__init__(**kw)

    def get_value(self, runner, base):
        progress, max_progress = ParamGroupHook.progress(self, runner)
        start = round(max_progress * self.start_percent)
        if progress - start < 0:
            return base
        return annealing_cos(base, self.target(base),
                             (progress - start) / (max_progress - start))


class CosineRestart(CosineAnnealing):
    def __init__(self, periods, restart_weights=(1,), **kw):
        assert len(periods) == len(restart_weights)
        self.periods, self.weights = list(periods), list(restart_weights)
        self.cumulative = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        super().__init__(**kw)

    def get_value(self, runner, base):
        progress, _ = ParamGroupHook.progress(self, runner)
        idx = next((i for i, end in enumerate(self.cumulative) if progress < end), None)
        if idx is None:
            raise ValueError(f"iteration {progress} exceeds the periods {self.cumulative}")
        restart = 0 if idx == 0 else self.cumulative[idx - 1]
        alpha = min((progress - restart) / self.periods[idx], 1)
        return annealing_cos(base, self.target(base), alpha, self.weights[idx])


class Cyclic:
    def __init__(self, by_epoch=False, target_ratio=None, cyclic_times=1, step_ratio_up=0.4,
                 anneal_strategy="cos", gamma=1.0, **kw):
        if target_ratio is None:
            target_ratio = (10, 1e-4) if self.kind == "lr" else (0.85 / 0.95, 1)
        if isinstance(target_ratio, (int, float)):
            target_ratio = (target_ratio, target_ratio / 1e5)
        elif len(target_ratio) == 1:
            target_ratio = (target_ratio[0], target_ratio[0] / 1e5)
        assert len(target_ratio) == 2 and 0 <= step_ratio_up < 1 and 0 < gamma <= 1
        assert not by_epoch
        self.target_ratio, self.cyclic_times = tuple(target_ratio), cyclic_times
        self.step_ratio_up, self.gamma = step_ratio_up, gamma
        self.anneal_func = ANNEAL[anneal_strategy]
        super().__init__(by_epoch=False, **kw)

    def before_run(self, runner):
        super().before_run(runner)
        self.per_phase = runner.max_iters // self.cyclic_times
        up = int(self.step_ratio_up * self.per_phase)
        self.phases = [[0, up, 1, self.target_ratio[0]],
                       [up, self.per_phase, self.target_ratio[0], self.target_ratio[1]]]

    def get_value(self, runner, base):
        cur = runner.iter % self.per_phase
        scale = self.gamma ** (runner.iter // self.per_phase)
        for start, end, start_ratio, end_ratio in self.phases:
            if start <= cur < end:
                if start == 0:
                    end_ratio = 1 - scale + end_ratio * scale
                else:
                    start_ratio = 1 - scale + start_ratio * scale
                return self.anneal_func(base * start_ratio, base * end_ratio,
                                        (cur - start) / (end - start))
        raise AssertionError("unreachable")


def _per_group(value, optimizer):
    """mmcv's ``format_param``: one value per param group (a list of another length is a
    ValueError naming the optimizer class, as mmcv words it)."""
    n = len(optimizer.param_groups)
    if not isinstance(value, (list, tuple)):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"expected {n} values for {type(optimizer).__name__}, got "
                         f"{len(value)}")
    return list(value)


class OneCycleLr:
    def __init__(self, max_lr, total_steps=None, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25, final_div_factor=1e4, three_phase=False, **kw):
        assert not kw.get("by_epoch", False)
        kw["by_epoch"] = False
        self.max_lr, self.total_steps, self.pct_start = max_lr, total_steps, pct_start
        self.anneal_func = ANNEAL[anneal_strategy]
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        self.three_phase = three_phase
        super().__init__(**kw)

    def before_run(self, runner):
        total = self.total_steps or runner.max_iters
        assert total >= runner.max_iters
        groups = runner.optimizer.param_groups
        self.base = [lr / self.div_factor for lr in _per_group(self.max_lr, runner.optimizer)]
        for group, lr in zip(groups, self.base):
            group.setdefault("initial_lr", lr)
        p = self.pct_start
        if self.three_phase:
            self.phases = [[float(p * total) - 1, 1, self.div_factor],
                           [float(2 * p * total) - 2, self.div_factor, 1],
                           [total - 1, 1, 1 / self.final_div_factor]]
        else:
            self.phases = [[float(p * total) - 1, 1, self.div_factor],
                           [total - 1, self.div_factor, 1 / self.final_div_factor]]

    def get_value(self, runner, base):
        start = 0
        for end, a, b in self.phases:
            if runner.iter <= end:
                return self.anneal_func(base * a, base * b, (runner.iter - start) / (end - start))
            start = end
        raise AssertionError("past total_steps")


class OneCycleMomentum:
    def __init__(self, base_momentum=0.85, max_momentum=0.95, pct_start=0.3,
                 anneal_strategy="cos", three_phase=False, **kw):
        assert not kw.get("by_epoch", False)
        kw["by_epoch"] = False
        self.base_m, self.max_m, self.pct_start = base_momentum, max_momentum, pct_start
        self.anneal_func = ANNEAL[anneal_strategy]
        self.three_phase = three_phase
        super().__init__(**kw)

    def before_run(self, runner):
        groups = runner.optimizer.param_groups
        for group, lo, hi in zip(groups, _per_group(self.base_m, runner.optimizer),
                                 _per_group(self.max_m, runner.optimizer)):
            self.write(group, hi)
            group["base_momentum"], group["max_momentum"] = lo, hi
        N, p = runner.max_iters, self.pct_start
        if self.three_phase:
            self.phases = [(float(p * N) - 1, "max_momentum", "base_momentum"),
                           (float(2 * p * N) - 2, "base_momentum", "max_momentum"),
                           (N - 1, "max_momentum", "max_momentum")]
        else:
            self.phases = [(float(p * N) - 1, "max_momentum", "base_momentum"),
                           (N - 1, "base_momentum", "max_momentum")]
        self.base = list(groups)  # get_value receives the group itself

    def get_value(self, runner, group):
        start = 0
        for i, (end, a, b) in enumerate(self.phases):
            if runner.iter <= end or i == len(self.phases) - 1:
                return self.anneal_func(group[a], group[b], (runner.iter - start) / (end - start))
            start = end


LR_POLICIES = {
    "Fixed": Fixed, "Step": Step, "Exp": Exp, "Poly": Poly, "Inv": Inv,
    "CosineAnnealing": CosineAnnealing, "LinearAnnealing": LinearAnnealing,
    "StepFixCosineAnnealing": StepFixCosineAnnealing,
    "FlatCosineAnnealing": FlatCosineAnnealing, "CosineRestart": CosineRestart,
    "Cyclic": Cyclic, "OneCycle": OneCycleLr,
}
MOMENTUM_POLICIES = {
    "Step": Step, "CosineAnnealing": CosineAnnealing, "LinearAnnealing": LinearAnnealing,
    "Cyclic": Cyclic, "OneCycle": OneCycleMomentum,
}


def _hook_class(policy, kind):
    table, base = (LR_POLICIES, LrHook) if kind == "lr" else (MOMENTUM_POLICIES, MomentumHook)
    mixin = table[policy]
    return type(f"{policy}{'Lr' if kind == 'lr' else 'Momentum'}UpdaterHook", (mixin, base),
                {"kind": kind})


def build_schedule_hook(config, kind, runner_type="EpochBasedRunner"):
    """An lr (``kind='lr'``) or momentum hook from an mmcv ``*_config`` dict."""
    if config is None:
        return None
    cfg = dict(config)
    policy = cfg.pop("policy")
    if policy == policy.lower():
        policy = policy.title()
    if runner_type == "IterBasedRunner" or policy in ("Cyclic", "OneCycle"):
        cfg.setdefault("by_epoch", False)
    return _hook_class(policy, kind)(**cfg)


