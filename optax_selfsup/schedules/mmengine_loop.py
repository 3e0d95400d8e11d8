"""The MMEngine train loop as parameter schedulers see it, and hook writes.

Time is counted in *time points*: ``t`` is the global iteration and the value
of time point ``t`` is what an optimizer step of iteration ``t`` reads. It is
the value after

* ``t = 0``: every scheduler's construction step, in list order;
* ``t >= 1``: the ``after_train_iter`` step of every iteration scheduler (list
  order), then, when ``t`` starts an epoch (``t % L == 0``) of an epoch loop,
  the ``after_train_epoch`` step of every epoch scheduler (list order);

and then the hook writes of that time point (``before_train_epoch`` when ``t``
starts an epoch, ``before_train_iter`` always). Under ``IterBasedTrainLoop``
the whole run is one epoch: an epoch scheduler steps only when it is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..errors import ConfigError, choices
from ..options import Options

INF = int(1e9)  # MMEngine's "no end" (``param_scheduler.INF``)
LOOP_TYPES = ("EpochBasedTrainLoop", "IterBasedTrainLoop")


def _positive_int(where: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}={value!r} must be a positive int")
    return value


@dataclasses.dataclass(frozen=True)
class TrainLoop:
    """The run: ``EpochBasedTrainLoop`` (``by_epoch``) or ``IterBasedTrainLoop``.

    ``steps_per_epoch`` is the train data loader's length ``L``: the epoch length
    of an epoch loop, and what ``convert_to_iter_based`` multiplies by in either
    loop. ``max_epochs`` is 1 under an iteration loop (as upstream).
    """

    by_epoch: bool
    max_iters: int
    max_epochs: int
    steps_per_epoch: int | None = None

    @classmethod
    def epochs(cls, max_epochs: int, steps_per_epoch: int) -> TrainLoop:
        _positive_int("train_cfg.max_epochs", max_epochs)
        _positive_int("steps_per_epoch", steps_per_epoch)
        return cls(True, max_epochs * steps_per_epoch, max_epochs, steps_per_epoch)

    @classmethod
    def iters(cls, max_iters: int, steps_per_epoch: int | None = None) -> TrainLoop:
        _positive_int("train_cfg.max_iters", max_iters)
        if steps_per_epoch is not None:
            _positive_int("steps_per_epoch", steps_per_epoch)
        return cls(False, max_iters, 1, steps_per_epoch)

    @classmethod
    def from_train_cfg(cls, train_cfg: dict, steps_per_epoch: int | None = None, *,
                       where: str = "train_cfg") -> TrainLoop:
        """From MMEngine's ``train_cfg`` (exactly one of ``type`` and ``by_epoch``)."""
        opts = Options(train_cfg, where)
        if opts.has("type") == opts.has("by_epoch"):
            raise ConfigError(
                f"{where} must have exactly one of 'type' and 'by_epoch' (MMEngine raises "
                f"{'RuntimeError' if opts.has('type') else 'KeyError'}); got {train_cfg!r}")
        if opts.has("type"):
            by_epoch = opts.choice("type", LOOP_TYPES) == "EpochBasedTrainLoop"
        else:
            by_epoch = opts.get("by_epoch")
            if not isinstance(by_epoch, bool):
                opts.fail("by_epoch", by_epoch, "must be True or False")
        for key in ("val_begin", "val_interval", "dynamic_intervals"):
            opts.get(key, None)  # validation settings: no effect on the schedules
        if by_epoch:
            loop = cls.epochs(opts.get("max_epochs"), steps_per_epoch)
        else:
            loop = cls.iters(opts.get("max_iters"), steps_per_epoch)
        opts.finish()
        return loop

    def epoch_length(self, where: str) -> int:
        if self.steps_per_epoch is None:
            raise ConfigError(f"{where}: convert_to_iter_based needs steps_per_epoch (the train "
                              "data loader's length)")
        return self.steps_per_epoch

    def epoch_starts(self, t) -> bool:
        """Whether time point ``t`` starts an epoch (host side)."""
        return t == 0 if not self.by_epoch else t % self.steps_per_epoch == 0


WRITE_EVERY = ("epoch", "iter")


@dataclasses.dataclass(frozen=True)
class HookWrite:
    """A hook sets ``param_name`` of the groups in ``mask`` to ``value``.

    ``every='epoch'``: in ``before_train_epoch`` (once under an iteration loop);
    ``every='iter'``: in ``before_train_iter`` (and ``before_train_epoch``). The
    schedulers' later steps continue from the written value; their base values
    (``initial_<param>``) are not changed.
    """

    mask: tuple[bool, ...]
    value: float
    every: str = "epoch"
    param_name: str = "lr"

    def __post_init__(self):
        if self.every not in WRITE_EVERY:
            raise ConfigError(f"HookWrite.every={self.every!r} is not one of "
                              f"{choices(WRITE_EVERY)}")
        object.__setattr__(self, "mask", tuple(bool(m) for m in self.mask))
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise ConfigError(f"HookWrite.value={self.value!r} must be a number")

    @classmethod
    def simsiam(cls, hook_cfg: dict, fix_lr: Sequence[bool], *,
                where: str = "custom_hooks[SimSiamHook]") -> HookWrite | None:
        """MMPretrain's ``SimSiamHook(fix_pred_lr, lr, adjust_by_epoch=True)``.

        ``fix_lr[g]`` says whether group ``g`` has ``fix_lr=True`` (set by a
        ``custom_keys`` rule). ``None`` when ``fix_pred_lr`` is False.
        """
        opts = Options(hook_cfg, where)
        kind = opts.get("type", "SimSiamHook")
        if not isinstance(kind, str) or kind.split(".")[-1] != "SimSiamHook":
            opts.fail("type", kind, "is not 'SimSiamHook'")
        opts.get("priority", None)
        fix = opts.get("fix_pred_lr")
        lr = opts.number("lr")
        by_epoch = opts.get("adjust_by_epoch", True)  # upstream: None acts as False
        if not isinstance(fix, bool):
            opts.fail("fix_pred_lr", fix, "must be True or False")
        if by_epoch is not None and not isinstance(by_epoch, bool):
            opts.fail("adjust_by_epoch", by_epoch, "must be True, False or None")
        opts.finish()
        if not fix:
            return None
        return cls(tuple(fix_lr), float(lr), "epoch" if by_epoch else "iter", "lr")
