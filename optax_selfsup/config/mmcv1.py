"""The MMSelfSup 0.x / mmcv 1.x reader: a config dict + params -> a ``Plan``.

Reads ``optimizer`` (with ``paramwise_options`` and the finetune constructor's
layer decay), ``lr_config``, ``momentum_config``, ``runner``,
``optimizer_config``, ``fp16`` and ``custom_hooks`` (SimSiamHook). Upstream:
MMSelfSup 0.x ``DefaultOptimizerConstructor`` / ``TransformerFinetuneConstructor``,
mmcv 1.7's lr and momentum updater hooks and optimizer hooks.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from ..errors import ConfigError, choices
from ..names import leaf_names, torch_names
from ..paramwise.layer_decay import swin_layer_decay, vit_layer_decay
from ..paramwise.norm_layers import warn_uneven_norm_layers
from ..paramwise.regex_rules import (
    check_groups,
    check_optimizer_values,
    resolve_paramwise,
    warn_unmatched,
)
from ..pytrees import unbox
from ..registry import OPTIMIZERS
from ..schedules.clock import Clock
from ..schedules.schedule import parse_schedule
from ..transforms.frozen import frozen_until
from ..transforms.grad_clip import GradClip
from ..transforms.rule import IMPLEMENTATION_ARGS, Rule, check_arguments
from ..transforms.torch_optimizer import resolve_rule
from ..validation import NON_NEGATIVE, check_number, check_params
from .mmcv1_hooks import parse_hooks, parse_simsiam
from .plan import Plan

CONSTRUCTORS = ("DefaultOptimizerConstructor", "TransformerFinetuneConstructor")


def constructor_options(names, optimizer_cfg: dict):
    """Apply ``constructor`` / ``model_type`` / ``layer_decay``; returns (paramwise, opt cfg).

    ``paramwise`` is None when every parameter shares the optimizer's settings. The
    optimizer's own arguments are checked here (``check_optimizer_values``).
    """
    opt = dict(optimizer_cfg)
    constructor = opt.pop("constructor", "DefaultOptimizerConstructor")
    if constructor not in CONSTRUCTORS:
        raise ConfigError(f"optimizer.constructor={constructor!r} is unknown; valid: "
                          f"{choices(CONSTRUCTORS)}")
    paramwise = opt.pop("paramwise_options", None)
    if constructor == "DefaultOptimizerConstructor":
        for key in ("layer_decay", "model_type"):
            if key in opt:
                raise ConfigError(f"optimizer.{key} needs constructor="
                                  "'TransformerFinetuneConstructor'")
        return paramwise, check_optimizer_values(opt)
    layer_decay = check_number("optimizer.layer_decay", opt.pop("layer_decay", 0.0),
                               NON_NEGATIVE)
    model_type = opt.pop("model_type", None)
    paramwise = {} if paramwise is None else paramwise
    if layer_decay > 0:
        if model_type == "vit":
            paramwise = vit_layer_decay(names, layer_decay, paramwise)
        elif model_type == "swin":
            paramwise = swin_layer_decay(names, layer_decay, paramwise)
        else:
            raise ConfigError(f"optimizer.model_type={model_type!r}: layer-wise lr decay "
                              f"supports {choices(['vit', 'swin'])}")
    return paramwise, check_optimizer_values(opt)


def _optimizer_config(cfg: dict) -> dict:
    if not isinstance(cfg, dict) or cfg.get("optimizer") is None:
        raise ConfigError("the config has no 'optimizer' (e.g. optimizer = dict(type='SGD', "
                          "lr=0.1, momentum=0.9))")
    example = "e.g. optimizer = dict(type='SGD', lr=0.1, momentum=0.9)"
    if not isinstance(cfg["optimizer"], Mapping):
        raise ConfigError(f"optimizer={cfg['optimizer']!r} must be a dict of the optimizer's "
                          f"type and arguments, got {type(cfg['optimizer']).__name__}; "
                          f"{example}")
    opt = dict(cfg["optimizer"])
    if "type" not in opt:
        raise ConfigError(f"optimizer: the key 'type' is required; {example}")
    if not isinstance(opt["type"], (str, Rule)):
        raise ConfigError(f"optimizer.type={opt['type']!r} must be the name of an optimizer "
                          f"(a string), got {type(opt['type']).__name__}; known: "
                          f"{choices(OPTIMIZERS.names())}")
    return opt


def plan_mmcv1(cfg: dict, params, *, steps_per_epoch=None, name_map="default",
               schedules: bool = True) -> Plan:
    """Read the config for ``params``; ``schedules=False`` skips the clock and schedules
    (the per-parameter table needs neither, nor ``steps_per_epoch``)."""
    given, params = params, unbox(params)
    opt = _optimizer_config(cfg)
    names = torch_names(params, name_map)
    paramwise, opt = constructor_options(names, opt)
    rule = resolve_rule(opt.pop("type"))
    for key in IMPLEMENTATION_ARGS:
        opt.pop(key, None)
    try:
        base = check_arguments(rule, opt)
    except TypeError as err:
        raise ConfigError(f"optimizer: {err}") from None
    if paramwise is None:
        groups = [{} for _ in names]
    else:
        groups, unmatched = resolve_paramwise(names, dict(cfg["optimizer"]), paramwise)
        warn_unmatched(unmatched)
    hparams = [{k: g.get(k, v) for k, v in base.items()} for g in groups]
    check_groups(rule, names, hparams, paramwise)
    # MMSelfSup 0.x: one torch param group per parameter, in named_parameters order, also
    # without paramwise_options (its constructor turns a missing dict into {})
    group_of, num_groups = list(range(len(names))), len(names)
    clock = lr_schedule = momentum_schedule = None
    runner = cfg.get("runner")
    if runner is None and schedules:
        raise ConfigError("the config has no 'runner' (e.g. runner = dict(type="
                          "'EpochBasedRunner', max_epochs=200)); it fixes the run length")
    if schedules:
        clock = Clock.from_runner_config(runner, steps_per_epoch)
        lr_schedule = parse_schedule(cfg.get("lr_config"), "lr", clock)
        momentum_schedule = parse_schedule(cfg.get("momentum_config"), "momentum", clock)
        for schedule in (lr_schedule, momentum_schedule):
            check_per_group_options(schedule, names, num_groups)
    if cfg.get("momentum_config") is not None and rule.momentum_key is None:
        raise ConfigError(f"momentum_config is set but {rule.name} has no momentum or betas "
                          "to schedule; remove momentum_config or pick an optimizer with one")
    hooks = parse_hooks(cfg)
    check_params(given)  # after every config check: config errors come first
    fix_lr = [bool(g.get("fix_lr", False)) for g in groups]
    frozen = frozen_until(names, hooks.frozen_layers, "optimizer_config.frozen_layers_cfg")
    settings = [tuple(sorted({**h, "fix_lr": f, "frozen_until": n}.items(), key=str))
                for h, f, n in zip(hparams, fix_lr, frozen)]
    shapes = [jnp.shape(x) for x in jax.tree.leaves(params)]
    warn_uneven_norm_layers(leaf_names(params), names, shapes, settings)
    simsiam = parse_simsiam(cfg)
    lr_override = None
    if simsiam is not None and any(fix_lr) and clock is not None:
        lr_override = (fix_lr, simsiam.lr, simsiam_active(simsiam, lr_schedule, clock))
    schedules = {k: v for k, v in (("lr", lr_schedule), ("momentum", momentum_schedule))
                 if v is not None}
    return Plan(
        names=names, rule=rule, clock=clock, hparams=hparams,
        fix_lr=fix_lr, frozen_until=frozen,
        group_of=group_of, num_groups=num_groups, schedules=schedules,
        clip=GradClip.of(hooks.grad_clip), update_interval=hooks.update_interval,
        flush_remainder=hooks.flush_remainder, loss_scale=hooks.loss_scale,
        lr_override=lr_override, generation="mmcv1", frozen_layers=dict(hooks.frozen_layers))


def check_per_group_options(schedule, names, num_groups: int) -> None:
    """OneCycle's list-valued options against MMSelfSup 0.x's groups (one per parameter).

    mmcv's ``format_param`` refuses a list of another length ("expected N values");
    a list of distinct values is taken in the params' leaf order, which is a torch
    model's ``named_parameters`` order only when the tree was built in that order.
    """
    if schedule is None:
        return
    for key, values in schedule.per_group_options().items():
        where = f"{schedule.kind}_config.{key}"
        if len(values) != num_groups:
            raise ConfigError(
                f"{where} has {len(values)} values but the params have {len(names)} "
                "parameters: MMSelfSup 0.x makes one param group per parameter (also "
                "without paramwise_options), so give one number for all or one value per "
                "parameter, in the order oss.describe lists them")
        if len(set(values)) > 1:
            shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
            warnings.warn(
                f"{where} gives one value per parameter; value i goes to the i-th leaf of "
                f"the params ({shown}; oss.describe lists them all). MMSelfSup takes them in "
                "the torch model's named_parameters order (module registration order), "
                "which a pytree's order (dict keys sorted) may not follow: check the order",
                UserWarning, stacklevel=4)


def simsiam_active(settings, schedule, clock):
    """When the SimSiamHook's lr is in force, as a function of the iteration.

    Hook order (mmcv priorities): the lr hook runs before the SimSiamHook. With
    ``adjust_by_epoch=False`` the fixed lr is set after the lr hook every
    iteration. With ``adjust_by_epoch=True`` it is set at epoch starts only, so
    a by-iteration lr hook overrides it at once, and a by-epoch lr hook
    overrides it during warmup and, from ``it == W``, for the rest of that epoch.
    """
    if not settings.adjust_by_epoch or schedule is None:
        return lambda it: jnp.asarray(True)
    if not schedule.by_epoch:
        return lambda it: jnp.asarray(False)
    if schedule.warmup is None:
        return lambda it: jnp.asarray(True)
    w, spe = schedule.warmup.length, clock.steps_per_epoch
    return lambda it: (it >= w) & ((it // spe) != (w // spe))
