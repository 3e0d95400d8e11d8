"""The run's clock: iterations, epochs and run length (SPEC section 1).

``it`` is the global micro-iteration (0-based, counting every batch); with
``spe`` steps per epoch, ``epoch = it // spe``. An ``EpochBasedRunner`` run of
``E`` epochs has ``max_iters = E * spe``; an ``IterBasedRunner`` run gives
``max_iters`` directly and has no epoch-based schedules.
"""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError, choices
from ..validation import ITERATION_LIMIT, is_concrete_int, kind_of

RUNNER_TYPES = ("EpochBasedRunner", "IterBasedRunner")


@dataclasses.dataclass(frozen=True)
class Clock:
    """The run length of an MMSelfSup 0.x config, as mmcv's runner counts it.

    ``runner_type`` is ``'EpochBasedRunner'`` (``max_iters = max_epochs *
    steps_per_epoch``; by-epoch schedules read ``iteration // steps_per_epoch``) or
    ``'IterBasedRunner'`` (``max_iters`` given; by-epoch schedules see epoch 0).
    Build one with ``Clock.create(...)``, which checks the numbers.
    """

    runner_type: str
    max_iters: int
    steps_per_epoch: int | None = None
    max_epochs: int | None = None

    @property
    def epoch_based(self) -> bool:
        return self.runner_type == "EpochBasedRunner"

    @classmethod
    def create(
        cls,
        *,
        runner_type: str = "EpochBasedRunner",
        steps_per_epoch: int | None = None,
        max_epochs: int | None = None,
        max_iters: int | None = None,
    ) -> Clock:
        if runner_type not in RUNNER_TYPES:
            raise ConfigError(
                f"runner.type={runner_type!r} is unknown; valid types are {choices(RUNNER_TYPES)}"
            )
        if steps_per_epoch is not None:
            steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
        if runner_type == "EpochBasedRunner":
            if max_epochs is None:
                raise ConfigError(
                    "runner.max_epochs is required for an EpochBasedRunner run "
                    "(use runner_type='IterBasedRunner' with max_iters for an iteration-based run)"
                )
            max_epochs = _positive_int("runner.max_epochs", max_epochs)
            if steps_per_epoch is None:
                raise ConfigError(
                    "steps_per_epoch is required for an EpochBasedRunner run: it is the data "
                    "loader length, needed for max_iters = max_epochs * steps_per_epoch"
                )
            total = max_epochs * steps_per_epoch
            if total > ITERATION_LIMIT:
                raise ConfigError(
                    f"runner.max_epochs * steps_per_epoch = {max_epochs} * {steps_per_epoch} = "
                    f"{total} iterations is past {ITERATION_LIMIT} (2**31 - 1), the most "
                    "iterations the compiled step counts (int32)")
            if max_iters is not None and max_iters != total:
                raise ConfigError(
                    f"max_iters={max_iters} contradicts max_epochs * steps_per_epoch = {total} "
                    "for an EpochBasedRunner run; leave max_iters out"
                )
            return cls(runner_type, total, steps_per_epoch, max_epochs)
        if max_iters is None:
            raise ConfigError("runner.max_iters is required for an IterBasedRunner run")
        max_iters = _positive_int("runner.max_iters", max_iters)
        if max_epochs is not None:
            raise ConfigError(
                "runner.max_epochs is not used by an IterBasedRunner run; give max_iters only"
            )
        return cls(runner_type, max_iters, steps_per_epoch, None)

    @classmethod
    def from_runner_config(cls, runner: dict, steps_per_epoch: int | None) -> Clock:
        """From an mmcv ``runner=dict(type=..., max_epochs=... | max_iters=...)``."""
        if not isinstance(runner, dict) or "type" not in runner:
            raise ConfigError(f"runner must be a dict with a 'type' key, got {runner!r}")
        extra = set(runner) - {"type", "max_epochs", "max_iters"}
        if extra:
            raise ConfigError(
                f"runner: unknown key(s) {choices(extra)}; valid keys are "
                f"{choices(['type', 'max_epochs', 'max_iters'])}"
            )
        return cls.create(
            runner_type=runner["type"],
            steps_per_epoch=steps_per_epoch,
            max_epochs=runner.get("max_epochs"),
            max_iters=runner.get("max_iters"),
        )


def _positive_int(name: str, value) -> int:
    """A Python or NumPy int > 0 that an int32 iteration counter holds, as a Python int."""
    if not is_concrete_int(value):
        raise ConfigError(f"{name}={value!r} must be a positive int, got {kind_of(value)}")
    if value <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive int")
    if value > ITERATION_LIMIT:
        raise ConfigError(f"{name}={value!r} is past {ITERATION_LIMIT} (2**31 - 1), the most "
                          "iterations the compiled step counts (int32)")
    return int(value)
