"""Config + params -> one optax transformation (SPEC sections 1 to 6).

``build_optimizer(cfg, params, steps_per_epoch=N)`` reads ``optimizer`` (with
``paramwise_options`` and the finetune constructor's layer decay),
``lr_config``, ``momentum_config``, ``runner``, ``optimizer_config``, ``fp16``
and ``custom_hooks`` (SimSiamHook), and assembles, outermost first::

    clocked -> accumulate (update_interval) -> skip_frozen -> dynamic_loss_scale
            -> torch_optimizer (with the grad_clip fused in)

Every parameter-wise value is a per-leaf constant; the one global clock lives
in ``clocked``. ``describe(cfg, params)`` shows what each parameter gets.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from .clock import Clock
from .errors import ConfigError
from .hook_config import HookSettings, SimSiamSettings, parse_hooks, parse_simsiam
from .names import leaf_names, torch_names
from .norm_layers import warn_uneven_norm_layers
from .paramwise import constructor_options, resolve_paramwise, warn_unmatched
from .pytrees import unbox
from .schedules import Schedule, parse_schedule
from .transforms.accumulate import accumulate
from .transforms.clocked import clocked
from .transforms.frozen import frozen_until, skip_frozen
from .transforms.loss_scale import dynamic_loss_scale
from .transforms.rule import IMPLEMENTATION_ARGS, Rule, check_arguments
from .transforms.torch_optimizer import resolve_rule, torch_optimizer
from .validation import check_params


@dataclasses.dataclass
class Plan:
    """Everything a config decides, per parameter and for the run."""

    names: list[str]
    rule: Rule
    clock: Clock | None  # None when planned without schedules (describe)
    hparams: list[dict]  # per leaf: the optimizer's keyword arguments
    fix_lr: list[bool]
    frozen_until: list[int]
    grouped: bool  # one param group per parameter (paramwise options given)
    lr_schedule: Schedule | None
    momentum_schedule: Schedule | None
    hooks: HookSettings
    simsiam: SimSiamSettings | None


def _optimizer_config(cfg: dict) -> dict:
    if not isinstance(cfg, dict) or cfg.get("optimizer") is None:
        raise ConfigError("the config has no 'optimizer' (e.g. optimizer = dict(type='SGD', "
                          "lr=0.1, momentum=0.9))")
    opt = dict(cfg["optimizer"])
    if "type" not in opt:
        raise ConfigError("optimizer: the key 'type' is required")
    return opt


def plan_optimizer(cfg: dict, params, *, steps_per_epoch=None, name_map="default",
                   schedules: bool = True) -> Plan:
    """Read the config for ``params``; ``schedules=False`` skips the clock and schedules
    (the per-parameter table needs neither, nor ``steps_per_epoch``)."""
    params = unbox(params)
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
    clock = lr_schedule = momentum_schedule = None
    runner = cfg.get("runner")
    if runner is None and schedules:
        raise ConfigError("the config has no 'runner' (e.g. runner = dict(type="
                          "'EpochBasedRunner', max_epochs=200)); it fixes the run length")
    if schedules:
        clock = Clock.from_runner_config(runner, steps_per_epoch)
        lr_schedule = parse_schedule(cfg.get("lr_config"), "lr", clock)
        momentum_schedule = parse_schedule(cfg.get("momentum_config"), "momentum", clock)
    if cfg.get("momentum_config") is not None and rule.momentum_key is None:
        raise ConfigError(f"momentum_config is set but {rule.name} has no momentum or betas "
                          "to schedule; remove momentum_config or pick an optimizer with one")
    hooks = parse_hooks(cfg)
    check_params(params)  # after every config check: config errors come first
    fix_lr = [bool(g.get("fix_lr", False)) for g in groups]
    frozen = frozen_until(names, hooks.frozen_layers)
    settings = [tuple(sorted({**h, "fix_lr": f, "frozen_until": n}.items(), key=str))
                for h, f, n in zip(hparams, fix_lr, frozen)]
    shapes = [jnp.shape(x) for x in jax.tree.leaves(params)]
    warn_uneven_norm_layers(leaf_names(params), names, shapes, settings)
    return Plan(
        names=names, rule=rule, clock=clock, hparams=hparams,
        fix_lr=fix_lr, frozen_until=frozen,
        grouped=paramwise is not None, lr_schedule=lr_schedule,
        momentum_schedule=momentum_schedule, hooks=hooks, simsiam=parse_simsiam(cfg))


def simsiam_active(plan: Plan):
    """When the SimSiamHook's lr is in force, as a function of the iteration.

    Hook order (mmcv priorities): the lr hook runs before the SimSiamHook. With
    ``adjust_by_epoch=False`` the fixed lr is set after the lr hook every
    iteration. With ``adjust_by_epoch=True`` it is set at epoch starts only, so
    a by-iteration lr hook overrides it at once, and a by-epoch lr hook
    overrides it during warmup and, from ``it == W``, for the rest of that epoch.
    """
    settings, schedule = plan.simsiam, plan.lr_schedule
    if not settings.adjust_by_epoch or schedule is None:
        return lambda it: jnp.asarray(True)
    if not schedule.by_epoch:
        return lambda it: jnp.asarray(False)
    if schedule.warmup is None:
        return lambda it: jnp.asarray(True)
    w, spe = schedule.warmup.length, plan.clock.steps_per_epoch
    return lambda it: (it >= w) & ((it // spe) != (w // spe))


def _tree(params, values):
    return jax.tree.unflatten(jax.tree.structure(params), values)


def build_optimizer(cfg: dict, params, *, steps_per_epoch: int | None = None,
                    name_map="default") -> optax.GradientTransformationExtraArgs:
    """The optax transformation an MMSelfSup config describes, for ``params``.

    ``params`` is any pytree of arrays (nested dicts, Flax Linen ``params``, an
    NNX ``nnx.State``). Leaf names are the key paths joined by '.', translated by
    ``name_map`` ('default' turns Flax spellings into torch ones, see
    ``names.py``; None keeps them) before the paramwise regexes see them. With
    ``fp16``, multiply the loss by ``oss.loss_scale(opt_state)`` before taking
    gradients; the transformation unscales them.
    """
    params = unbox(params)
    plan = plan_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map)
    columns = {k: _tree(params, [h[k] for h in plan.hparams]) for k in plan.rule.defaults}
    lr_override = None
    if plan.simsiam is not None and any(plan.fix_lr):
        lr_override = (_tree(params, plan.fix_lr), plan.simsiam.lr, simsiam_active(plan))
    group_index = (_tree(params, list(range(len(plan.names)))) if plan.grouped else 0)
    hooks = plan.hooks
    tx = torch_optimizer(plan.rule, lr_schedule=plan.lr_schedule,
                         momentum_schedule=plan.momentum_schedule, group_index=group_index,
                         lr_override=lr_override, clip=hooks.grad_clip, **columns)
    if hooks.loss_scale is not None:
        tx = dynamic_loss_scale(tx, **hooks.loss_scale)
    if any(plan.frozen_until):
        tx = skip_frozen(tx, _tree(params, plan.frozen_until))
    if hooks.update_interval > 1:
        tx = accumulate(tx, hooks.update_interval, plan.clock.max_iters,
                        flush_remainder=hooks.flush_remainder)
    return clocked(tx)


def describe(cfg: dict, params, *, steps_per_epoch: int | None = None,
             name_map="default") -> list[dict]:
    """Per parameter: name, lr, weight_decay, momentum, lars_exclude, fix_lr, frozen_until.

    The values are the group's base values (what the schedules start from); they do
    not depend on ``steps_per_epoch``, which is only used to check the schedules.
    """
    plan = plan_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map,
                          schedules=steps_per_epoch is not None)
    rows = []
    mkey = plan.rule.momentum_key
    for i, name in enumerate(plan.names):
        h = plan.hparams[i]
        momentum = None if mkey is None else (h["betas"][0] if mkey == "betas" else h[mkey])
        rows.append(dict(name=name, lr=h["lr"], weight_decay=h.get("weight_decay"),
                         momentum=momentum, lars_exclude=bool(h.get("lars_exclude", False)),
                         fix_lr=plan.fix_lr[i], frozen_until=plan.frozen_until[i]))
    return rows


def format_table(rows: list[dict]) -> str:
    keys = ["name", "lr", "weight_decay", "momentum", "lars_exclude", "fix_lr", "frozen_until"]
    cells = [keys] + [[f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]) for k in keys]
                      for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells)
