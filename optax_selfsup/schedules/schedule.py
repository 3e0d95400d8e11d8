"""``lr_config`` / ``momentum_config`` -> jit-able schedules of the global iteration.

A ``Schedule`` is a pure function ``(it, base) -> value``: ``it`` is the global
micro-iteration (any integer array), ``base`` the group's base value (a scalar
or an array of per-parameter bases, evaluated elementwise). By-epoch policies
see ``progress = it // steps_per_epoch`` (the "stair": the value is fixed for
the epoch), while warmup always moves per iteration; that is mmcv's
``before_train_epoch`` / ``before_train_iter`` order in closed form.
"""

from __future__ import annotations

import dataclasses
import functools

import jax.numpy as jnp

from ..errors import ConfigError
from ..options import Options
from ..registry import LR_POLICIES, MOMENTUM_POLICIES
from .anneal import as_iteration, float_dtype
from .clock import Clock
from .mmcv1_cyclic import ITERATION_POLICIES
from .mmcv1_policies import CLOSED_FORM_POLICIES, Policy, PolicyContext, StepFixCosineAnnealing
from .warmup import Warmup, parse_warmup

for _cls in CLOSED_FORM_POLICIES + ITERATION_POLICIES:
    if "lr" in _cls.kinds:
        LR_POLICIES.register(_cls.name, _cls)
    if "momentum" in _cls.kinds:
        MOMENTUM_POLICIES.register(_cls.name, _cls)

_HOOK_SUFFIX = {"lr": "LrUpdaterHook", "momentum": "MomentumUpdaterHook"}


@dataclasses.dataclass(frozen=True)
class Schedule:
    """One configured lr or momentum schedule: ``value = schedule(it, base)``.

    Past the run's end (``it >= max_iters``, which mmcv never reaches) every policy
    holds its value of iteration ``max_iters - 1``; ``max_iters=None`` holds nothing.
    """

    kind: str
    policy: Policy
    by_epoch: bool
    steps_per_epoch: int | None
    warmup: Warmup | None
    max_iters: int | None = None

    def __call__(self, it, base):
        it = as_iteration(it)
        if self.max_iters is not None:
            it = jnp.minimum(it, self.max_iters - 1)
        progress = it // self.steps_per_epoch if self.by_epoch else it
        regular = self.policy(progress, base)
        return regular if self.warmup is None else self.warmup(it, regular)

    def base_value(self, base, group_index: int | None = None):
        """The group's base for this schedule (OneCycle replaces the optimizer's value)."""
        return self.policy.base_value(base, group_index)

    def per_group_options(self) -> dict:
        """The options given as one value per param group (OneCycle's ``max_lr``,
        ``base_momentum``, ``max_momentum`` lists): ``{config key: tuple of values}``."""
        return self.policy.per_group_options()

    def bind(self, base, group_index: int | None = None):
        """``it -> value`` for one group; usable as optax's ``learning_rate``."""
        return functools.partial(self, base=self.base_value(base, group_index))


def _policy_name(opts: Options, kind: str) -> str:
    if opts.has("policy"):
        name = opts.get("policy")
        if not isinstance(name, str):
            opts.fail("policy", name, "must be a string")
        # mmcv: a name written all in lower case is title-cased ('step' -> 'Step')
        return name.title() if name == name.lower() else name
    if opts.has("type"):  # mmcv also accepts the hook's class name
        name = opts.get("type")
        if isinstance(name, str) and name.endswith(_HOOK_SUFFIX[kind]):
            return name[: -len(_HOOK_SUFFIX[kind])]
        opts.fail("type", name, f"must name a <Policy>{_HOOK_SUFFIX[kind]} class")
    raise ConfigError(f"{opts.where}: the key 'policy' is required")


def parse_schedule(config: dict | None, kind: str, clock: Clock, *,
                   where: str | None = None) -> Schedule | None:
    """Validate ``config`` and build its ``Schedule``; ``None`` config -> ``None``."""
    if config is None:
        return None
    where = where or f"{kind}_config"
    opts = Options(config, where)
    registry = LR_POLICIES if kind == "lr" else MOMENTUM_POLICIES
    cls = registry.get(_policy_name(opts, kind), f"{where}.policy")
    iteration_only = getattr(cls, "iteration_only", False)

    by_epoch = opts.flag("by_epoch", clock.epoch_based and not iteration_only)
    if by_epoch and iteration_only:
        opts.fail("by_epoch", by_epoch, f"is not supported by the {cls.name} policy "
                  "(upstream: only by_epoch=False)")
    if by_epoch and not clock.epoch_based:
        opts.fail("by_epoch", by_epoch, "is refused under IterBasedRunner: upstream never "
                  "fires by-epoch hooks there and the value would stay at its base; use "
                  "by_epoch=False")

    warmup = parse_warmup(opts, kind, clock, plain_linear=(cls is StepFixCosineAnnealing))
    warmup_progress = 0
    if warmup is not None:
        warmup_progress = warmup.length // clock.steps_per_epoch if by_epoch else warmup.length
    ctx = PolicyContext(
        kind=kind,
        by_epoch=by_epoch,
        max_progress=clock.max_epochs if by_epoch else clock.max_iters,
        max_iters=clock.max_iters,
        warmup_progress=warmup_progress,
        steps_per_epoch=clock.steps_per_epoch,
    )
    policy = cls.from_config(opts, ctx)
    opts.finish()
    return Schedule(kind, policy, by_epoch, clock.steps_per_epoch, warmup, clock.max_iters)


def _constant(value):
    def schedule(it):
        return jnp.full(jnp.shape(as_iteration(it)), value, float_dtype())

    return schedule


def lr_schedule(lr_config, base_lr, *, steps_per_epoch=None, max_epochs=None, max_iters=None,
                runner_type="EpochBasedRunner", group_index=None):
    """``it -> lr`` for one param group whose base lr is ``base_lr`` (SPEC section 2).

    jit-able, vmap-able and usable directly as optax's ``learning_rate``. For
    ``OneCycle`` the base is ``max_lr / div_factor`` (pass ``group_index`` when
    ``max_lr`` is a per-group list). ``lr_config=None`` keeps ``base_lr``.
    """
    clock = Clock.create(runner_type=runner_type, steps_per_epoch=steps_per_epoch,
                         max_epochs=max_epochs, max_iters=max_iters)
    schedule = parse_schedule(lr_config, "lr", clock)
    return _constant(base_lr) if schedule is None else schedule.bind(base_lr, group_index)


def momentum_schedule(momentum_config, base_momentum, *, steps_per_epoch=None, max_epochs=None,
                      max_iters=None, runner_type="EpochBasedRunner", group_index=None):
    """``it -> momentum`` (``betas[0]`` for the Adam family) for one group (SPEC section 3).

    For ``OneCycle`` the values come from ``base_momentum`` / ``max_momentum`` in
    the config and the ``base_momentum`` argument is not used.
    """
    clock = Clock.create(runner_type=runner_type, steps_per_epoch=steps_per_epoch,
                         max_epochs=max_epochs, max_iters=max_iters)
    schedule = parse_schedule(momentum_config, "momentum", clock)
    if schedule is None:
        return _constant(base_momentum)
    return schedule.bind(base_momentum, group_index)
