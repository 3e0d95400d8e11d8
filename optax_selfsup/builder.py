"""Config + params -> one optax transformation (SPEC sections 1 to 4).

``build_optimizer(cfg, params, steps_per_epoch=N)`` reads ``optimizer``,
``lr_config``, ``momentum_config`` and ``runner`` and returns the torch-exact
optimizer driven by the global clock. Parameter-wise options and
``optimizer_config`` come on top of this in later layers.
"""

from __future__ import annotations

import optax

from .clock import Clock
from .errors import ConfigError
from .schedules import parse_schedule
from .transforms.clocked import clocked
from .transforms.rule import IMPLEMENTATION_ARGS
from .transforms.torch_optimizer import check_arguments, resolve_rule, torch_optimizer


def _optimizer_config(cfg: dict):
    if "optimizer" not in cfg or cfg["optimizer"] is None:
        raise ConfigError("the config has no 'optimizer' (e.g. optimizer = dict(type='SGD', "
                          "lr=0.1, momentum=0.9))")
    opt = dict(cfg["optimizer"])
    if "type" not in opt:
        raise ConfigError("optimizer: the key 'type' is required")
    return opt


def build_optimizer(cfg: dict, params, *, steps_per_epoch: int | None = None
                    ) -> optax.GradientTransformationExtraArgs:
    """The optax transformation an MMSelfSup config describes, for ``params``.

    ``params`` is any pytree of arrays: nested dicts, Flax Linen ``params`` or a
    Flax NNX ``nnx.State``. The returned transformation's ``update`` takes the
    params as its third argument.
    """
    opt = _optimizer_config(cfg)
    rule = resolve_rule(opt.pop("type"))
    opt.pop("paramwise_options", None)
    try:
        check_arguments(rule, opt)
    except TypeError as err:
        raise ConfigError(f"optimizer: {err}") from None
    clock = Clock.from_runner_config(cfg.get("runner") or _missing_runner(), steps_per_epoch)
    lr_schedule = parse_schedule(cfg.get("lr_config"), "lr", clock)
    momentum_schedule = parse_schedule(cfg.get("momentum_config"), "momentum", clock)
    if momentum_schedule is not None and rule.momentum_key is None:
        raise ConfigError(f"momentum_config is set but {rule.name} has no momentum or betas "
                          "to schedule; remove momentum_config or pick an optimizer with one")
    del params  # the per-leaf layout is read from the params at init time
    tx = torch_optimizer(rule, lr_schedule=lr_schedule, momentum_schedule=momentum_schedule,
                         group_index=0, **{k: v for k, v in opt.items()
                                           if k not in IMPLEMENTATION_ARGS})
    return clocked(tx)


def _missing_runner():
    raise ConfigError("the config has no 'runner' (e.g. runner = dict(type='EpochBasedRunner', "
                      "max_epochs=200)); it fixes the run length the schedules need")
