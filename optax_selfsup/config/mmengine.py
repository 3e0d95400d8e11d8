"""The MMEngine reader (MMSelfSup 1.x, MMPretrain 1.x): a config dict + params -> a ``Plan``.

Reads ``optim_wrapper`` (``mmengine_wrapper.py``: wrapper type, optimizer, clip_grad,
accumulative_counts, AMP loss scale; the constructor's param groups from
``paramwise.optim_wrapper_groups``), ``param_scheduler`` and ``train_cfg``
(``schedules.parse_param_scheduler``), ``custom_hooks``, ``default_hooks`` and
``auto_scale_lr`` (``mmengine_hooks.py``), ``default_scope`` and ``model`` (the
backbone facts of layer-wise lr decay). Upstream: MMEngine 0.10.7's Runner,
``DefaultOptimWrapperConstructor``, ``OptimWrapper`` / ``AmpOptimWrapper``, its
parameter schedulers, and MMPretrain 1.2.0's optimizers, constructor and hooks.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from ..errors import ConfigError, choices
from ..names import leaf_names, torch_names
from ..paramwise.mmengine_groups import optim_wrapper_groups
from ..paramwise.module_kinds import (
    ModuleKinds,
    guess_module_kinds,
    looks_like_norm,
    module_kinds_from_nnx,
)
from ..paramwise.norm_layers import NormLayerWarning
from ..pytrees import unbox
from ..schedules.group_schedule import GroupSchedule
from ..schedules.mmengine import parse_param_scheduler
from ..schedules.mmengine_loop import HookWrite, TrainLoop
from ..transforms.frozen import frozen_until
from ..transforms.rule import check_arguments
from ..validation import check_params, check_rule_values
from .mmengine_hooks import auto_scale_ratio, check_default_hooks, parse_custom_hooks
from .mmengine_wrapper import parse_wrapper
from .plan import Plan

#: Group keys the constructors copy in that no optimizer reads: shown by describe.
BOOKKEEPING = ("lr_mult", "decay_mult", "fix_lr", "layer_id", "lr_scale", "param_name")


def default_scope(cfg: Mapping) -> str:
    """The registry scope type names resolve in (``Runner.from_cfg``: 'mmengine' when unset)."""
    scope = cfg.get("default_scope", "mmengine")
    if scope is None:
        return "mmengine"
    if not isinstance(scope, str):
        raise ConfigError(f"default_scope={scope!r} must be a string such as 'mmpretrain'")
    return scope


def module_kinds(module, names, shapes, raw, norm_layers, dwconv_layers, name_map):
    """Norm layers and depthwise convs: from ``module`` (an ``nnx.Module`` or a
    ``ModuleKinds``), else guessed from names and shapes (``norm_layers`` /
    ``dwconv_layers`` replace the guess)."""
    if module is None:
        return guess_module_kinds(names, shapes, raw_names=raw, norm_layers=norm_layers,
                                  dwconv_layers=dwconv_layers)
    if norm_layers is not None or dwconv_layers is not None:
        raise ConfigError("give either module= (exact module types) or norm_layers= / "
                          "dwconv_layers= (names), not both")
    if not isinstance(module, ModuleKinds):
        from flax import nnx

        if not isinstance(module, nnx.Module):
            raise ConfigError(
                f"module={type(module).__name__} must be the nnx.Module the params belong to "
                "or a ModuleKinds (optax_selfsup.paramwise.module_kinds_from_linen(module, "
                "*init_args) for a Linen module)")
        module = module_kinds_from_nnx(module, name_map=name_map)
    stray = sorted((module.norm | module.dwconv) - set(names))
    if stray:
        raise ConfigError(f"module=: {len(stray)} of its parameters are not in the params "
                          f"({', '.join(map(repr, stray[:3]))}{', ...' if len(stray) > 3 else ''}"
                          f"); params names: {', '.join(map(repr, names[:3]))}, ...")
    return module


def _uncertain_norm(name, kinds, names, shapes) -> bool:
    """A guessed norm layer where the two signs (an affine weight/bias pair, a norm-like
    module name) disagree: the guess that decides the parameter's group is weak."""
    path = name.rpartition(".")[0]
    own = {n.rpartition(".")[2]: s for n, s in zip(names, shapes) if n.rpartition(".")[0] == path}
    scale = own.get("weight", own.get("scale"))
    affine = (len(own) == 2 and "bias" in own and scale is not None and len(scale) == 1
              and scale == own["bias"])
    return kinds.is_norm(name) and affine != looks_like_norm(path)


def _warn_guesses(groups, kinds, names, shapes, cfg) -> None:
    weak = [n for n in groups.depends_on_guess
            if n in kinds.guessed_norm and _uncertain_norm(n, kinds, names, shapes)]
    backbone = ((cfg.get("model") or {}).get("backbone") or {})
    hornet = isinstance(backbone, Mapping) and str(backbone.get("type", "")).endswith("HorNet")
    if hornet and groups.depends_on_guess:
        weak = list(dict.fromkeys(list(groups.depends_on_guess) + weak))
    if not weak:
        return
    shown = ", ".join(f"{n!r} ({'norm layer' if kinds.is_norm(n) else 'not a norm layer'})"
                      for n in weak[:6])
    more = f" and {len(weak) - 6} more" if len(weak) > 6 else ""
    why = ("HorNet's own HorNetLayerNorm is no torch norm layer for MMEngine, but looks like "
           "one; " if hornet else "")
    warnings.warn(
        f"optim_wrapper.paramwise_cfg: the group of {shown}{more} depends on a GUESS of the "
        f"owning module's kind from its name and shapes ({why}MMEngine decides by the torch "
        "module type). Pass module=<the nnx.Module> (or a ModuleKinds from "
        "paramwise.module_kinds_from_linen) or norm_layers=[...] to make it exact; "
        "oss.describe shows every group", NormLayerWarning, stacklevel=4)


def _check_custom_keys(paramwise_cfg, rule, has_simsiam) -> None:
    """Values a custom key hands the optimizer, and keys nothing reads."""
    custom = (paramwise_cfg or {}).get("custom_keys") or {}
    for key, settings in custom.items():
        where = f"optim_wrapper.paramwise_cfg.custom_keys[{key!r}]"
        given = {k: v for k, v in settings.items() if k in rule.defaults}
        shared = [k for k in given if k in rule.shared_args]
        if shared:
            raise ConfigError(f"{where} sets {choices(shared)}, which {rule.name} reads once for "
                              "all param groups (the optimizer's own value): upstream ignores a "
                              "group's; set it in optim_wrapper.optimizer")
        check_rule_values(rule, {k: tuple(v) if isinstance(v, list) else v
                                 for k, v in given.items()}, f"{where}.")
        unread = [k for k in settings if k not in rule.defaults and k not in BOOKKEEPING]
        if "fix_lr" in settings and not has_simsiam:
            unread.append("fix_lr")
        for k in unread:
            what = ("only SimSiamHook reads it and custom_hooks has none" if k == "fix_lr"
                    else f"{rule.name} does not read it")
            warnings.warn(f"{where} sets {k!r}: MMEngine copies it into the param group, but "
                          f"{what}, so it has no effect (upstream neither)", UserWarning,
                          stacklevel=4)


def _warn_top_level_optimizer(cfg, optim_wrapper) -> None:
    """MMEngine reads ``optim_wrapper.optimizer`` only; a top-level ``optimizer`` (the variable
    real configs pass into it) that says otherwise, e.g. after ``--cfg-options
    optimizer.lr=...``, changes nothing."""
    top, used = cfg.get("optimizer"), optim_wrapper.get("optimizer")
    if not isinstance(top, Mapping) or not isinstance(used, Mapping) or top == used:
        return
    keys = sorted({k for k in set(top) | set(used) if top.get(k, used.get(k)) != used.get(k)},
                  key=str)
    if keys:
        warnings.warn(f"the top-level 'optimizer' differs from optim_wrapper.optimizer in "
                      f"{choices(keys)}: MMEngine reads only optim_wrapper.optimizer (so does "
                      "this port); set the values there (e.g. --cfg-options "
                      "optim_wrapper.optimizer.lr=...)", UserWarning, stacklevel=4)


def _group_hparams(rule, base, group: dict) -> dict:
    h = {k: group.get(k, v) for k, v in base.items()}
    for k, v in h.items():
        if isinstance(rule.defaults[k], tuple) and isinstance(v, list):
            h[k] = tuple(v)
    return h


def _validate_groups(rule, names, hparams) -> None:
    seen = set()
    for name, h in zip(names, hparams):
        h = {k: bool(v) if k in rule.flags else v for k, v in h.items()}
        key = repr(sorted(h.items()))
        if key in seen:
            continue
        try:
            rule.validate(h)
        except ConfigError as err:
            raise ConfigError(f"optim_wrapper: the param group of {name!r} is invalid: {err} "
                              "(torch checks only the optimizer's own arguments, so upstream "
                              "would run it unchecked)") from None
        seen.add(key)


def _loop(cfg, steps_per_epoch) -> TrainLoop:
    train_cfg = cfg.get("train_cfg")
    if train_cfg is None:
        raise ConfigError("the config has no 'train_cfg' (e.g. train_cfg = dict(type="
                          "'EpochBasedTrainLoop', max_epochs=200)); it fixes the run length")
    by_epoch = isinstance(train_cfg, Mapping) and (
        str(train_cfg.get("type", "")).endswith("EpochBasedTrainLoop")
        or train_cfg.get("by_epoch") is True)
    if by_epoch and steps_per_epoch is None:
        raise ConfigError("train_cfg is an EpochBasedTrainLoop: give steps_per_epoch (the "
                          "train data loader's length), build_optimizer(cfg, params, "
                          "steps_per_epoch=N)")
    return TrainLoop.from_train_cfg(train_cfg, steps_per_epoch)


def plan_mmengine(cfg: dict, params, *, steps_per_epoch=None, name_map="default",
                  schedules: bool = True, module=None, norm_layers=None, dwconv_layers=None,
                  batch_size=None) -> Plan:
    """Read an MMEngine config for ``params``; ``schedules=False`` skips ``train_cfg`` and
    ``param_scheduler`` (the per-parameter table needs neither)."""
    given, params = params, unbox(params)
    scope = default_scope(cfg)
    ow = cfg.get("optim_wrapper")
    if ow is None:
        raise ConfigError("the config has no 'optim_wrapper' (e.g. optim_wrapper = dict("
                          "optimizer=dict(type='SGD', lr=0.1, momentum=0.9)))")
    wrapper = parse_wrapper(ow, scope)
    rule = wrapper.rule
    _warn_top_level_optimizer(cfg, ow)
    hooks = parse_custom_hooks(cfg, wrapper.accumulative_counts)
    check_default_hooks(cfg)
    ratio = auto_scale_ratio(cfg, batch_size)
    names, raw = torch_names(params, name_map), leaf_names(params)
    shapes = [tuple(jnp.shape(x)) for x in jax.tree.leaves(params)]
    paramwise = ow.get("paramwise_cfg")
    kinds = None
    if paramwise:
        kinds = module_kinds(module, names, shapes, raw, norm_layers, dwconv_layers, name_map)
    groups = optim_wrapper_groups(ow, names, shapes, model_cfg=cfg.get("model"),
                                  default_scope=scope, kinds=kinds)
    _check_custom_keys(paramwise, rule, hooks.simsiam is not None)
    base = check_arguments(rule, wrapper.optimizer)
    group_dicts = [groups.group(n) for n in names]
    hparams = [_group_hparams(rule, base, g) for g in group_dicts]
    if ratio is not None:  # Runner.scale_lr: after the constructor, before the schedulers
        hparams = [dict(h, lr=h["lr"] * ratio) for h in hparams]
    _validate_groups(rule, names, hparams)
    if groups.per_parameter:
        position = {n: i for i, n in enumerate(groups.names)}
        group_of, num_groups = [position[n] for n in names], max(len(groups.names), 1)
    else:
        group_of, num_groups = [0] * len(names), 1
    fix_lr = [bool(g.get("fix_lr", False)) for g in group_dicts]
    loop, scheduled = None, {}
    if schedules:
        loop = _loop(cfg, steps_per_epoch)
        scheduled = _schedules(cfg, loop, rule, base, hparams, group_of, num_groups, fix_lr,
                               hooks, scope)
    frozen = frozen_until(names, hooks.frozen_layers, "custom_hooks SwAVHook.frozen_layers_cfg")
    check_params(given)  # after every config check; before unboxing: NNX variable types
    if kinds is not None and module is None and norm_layers is None:
        _warn_guesses(groups, kinds, names, shapes, cfg)
    keys = [{k: v for k, v in g.items() if k not in rule.defaults} for g in group_dicts]
    return Plan(
        names=names, rule=rule, clock=loop, hparams=hparams, fix_lr=fix_lr,
        frozen_until=frozen, group_of=group_of, num_groups=num_groups, schedules=scheduled,
        clip=wrapper.clip, update_interval=wrapper.accumulative_counts, flush_remainder=True,
        loss_scale=wrapper.loss_scale, lr_override=None, generation="mmengine",
        group_keys=keys, frozen_layers=dict(hooks.frozen_layers))


def _schedules(cfg, loop, rule, base_of, hparams, group_of, num_groups, fix_lr, hooks,
               scope) -> dict:
    """``param_scheduler`` (and the SimSiamHook's writes) per hyperparameter, on the groups."""
    group_fix = [False] * num_groups
    first = {}
    for i, g in enumerate(group_of):
        first.setdefault(g, i)
        group_fix[g] = group_fix[g] or fix_lr[i]
    writes = []
    if hooks.simsiam is not None:
        write = HookWrite.simsiam(hooks.simsiam, group_fix)
        if write is not None:
            if not any(group_fix):
                warnings.warn("custom_hooks SimSiamHook(fix_pred_lr=True) fixes the lr of the "
                              "param groups with fix_lr=True, but no group has it (e.g. "
                              "paramwise_cfg=dict(custom_keys={'predictor': dict(fix_lr=True)}))"
                              ": it changes nothing (upstream neither)", UserWarning,
                              stacklevel=4)
            writes.append(write)
    entries = cfg.get("param_scheduler") or []
    for i, entry in enumerate([entries] if isinstance(entries, Mapping) else entries):
        eta = entry.get("eta_max") if isinstance(entry, Mapping) else None
        if isinstance(eta, (list, tuple)) and len(set(eta)) > 1:
            warnings.warn(
                f"param_scheduler[{i}].eta_max gives one value per param group; value g goes "
                "to group g as oss.describe's 'group' column numbers them (a module's own "
                "parameters before its submodules', each module's in the params' leaf order: a "
                "torch layer registers weight before bias, a sorted dict puts bias first): "
                "check the order", UserWarning, stacklevel=4)
    mkey = rule.momentum_key
    scheds = parse_param_scheduler(cfg.get("param_scheduler"), loop, n_groups=num_groups,
                                   hook_writes=writes, optimizer_momentum=mkey,
                                   default_scope=scope)
    pick = {"lr": lambda h: h["lr"], "weight_decay": lambda h: h["weight_decay"],
            "momentum": lambda h: h["betas"][0] if mkey == "betas" else h[mkey]}
    out = {}
    for name in scheds.params:
        if name == "weight_decay" and "weight_decay" not in rule.defaults:
            raise ConfigError(f"param_scheduler schedules 'weight_decay', but {rule.name} has "
                              "none (MMEngine raises KeyError 'weight_decay')")
        if name == "momentum" and mkey == "betas" and not all(
                isinstance(h["betas"], tuple) and len(h["betas"]) == 2 for h in hparams):
            raise ConfigError("a momentum scheduler needs betas=(beta1, beta2) in every group")
        bases = [float(pick[name](hparams[first[g]] if g in first else base_of))
                 for g in range(num_groups)]
        out[name] = GroupSchedule(scheds.for_param(name), bases)
    return out
