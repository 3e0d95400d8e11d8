"""A plan -> one optax transformation; the public entry points (SPEC sections 1 to 6).

``build_optimizer(cfg, params, steps_per_epoch=N)`` reads the config with its
generation's reader (``config/mmcv1.py`` for MMSelfSup 0.x / mmcv 1.x,
``config/mmengine.py`` for MMSelfSup 1.x / MMPretrain 1.x) into a ``Plan``, then
assembles, outermost first::

    clocked -> accumulate (update interval) -> skip_frozen -> dynamic_loss_scale
            -> torch_optimizer (with the gradient clip fused in)

Every parameter-wise value is a per-leaf constant; the one global clock lives
in ``clocked``. ``describe(cfg, params)`` shows what each parameter gets.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .config.generation import MMENGINE, generation_of
from .config.mmcv1 import plan_mmcv1
from .config.mmengine import BOOKKEEPING, plan_mmengine
from .config.plan import Plan
from .errors import ConfigError
from .layout import FlatLayout
from .pytrees import unbox
from .transforms.accumulate import accumulate
from .transforms.clocked import clocked
from .transforms.flat_io import flat_io
from .transforms.flat_optimizer import signature_groups
from .transforms.frozen import skip_frozen
from .transforms.loss_scale import dynamic_loss_scale
from .transforms.torch_optimizer import torch_optimizer

#: Keyword arguments only the MMEngine reader takes (module kinds, auto_scale_lr).
MMENGINE_ONLY = ("module", "norm_layers", "dwconv_layers", "batch_size")


def _no_generation(cfg, schedules: bool) -> ConfigError:
    missing = [k for k in ("optimizer", "runner") if not isinstance(cfg, dict) or k not in cfg]
    has = "" if not missing else f"The config has no {' and no '.join(map(repr, missing))}. "
    return ConfigError(
        f"{has}Which generation is it? MMSelfSup 0.x / mmcv 1.x configs need 'optimizer' "
        "and 'runner' (e.g. runner = dict(type='EpochBasedRunner', max_epochs=200)), with "
        "lr_config / momentum_config / optimizer_config as needed; MMEngine configs "
        "(MMSelfSup 1.x, MMPretrain 1.x) need 'optim_wrapper' (e.g. optim_wrapper = dict("
        "optimizer=dict(type='SGD', lr=0.1))) and 'train_cfg' (e.g. train_cfg = dict(type="
        "'EpochBasedTrainLoop', max_epochs=200)), with param_scheduler as needed"
        + ("" if schedules else "; the per-parameter table needs 'optimizer' or "
           "'optim_wrapper'"))


def plan_optimizer(cfg: dict, params, *, steps_per_epoch=None, name_map="default",
                   schedules: bool = True, **mmengine) -> Plan:
    """Read the config for ``params`` into a ``Plan``, with the reader of the config's
    generation (``oss.config.generation_of``); ``schedules=False`` skips the run length
    and schedules (the per-parameter table needs neither, nor ``steps_per_epoch``).
    ``module=``, ``norm_layers=``, ``dwconv_layers=``, ``batch_size=``: MMEngine configs
    only (see ``build_optimizer``)."""
    unknown = [k for k in mmengine if k not in MMENGINE_ONLY]
    if unknown:
        raise TypeError(f"plan_optimizer got unexpected keyword argument(s) {unknown}")
    generation = generation_of(cfg) if isinstance(cfg, dict) else None
    if generation == MMENGINE:
        return plan_mmengine(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map,
                             schedules=schedules, **mmengine)
    if generation is None and (schedules or not isinstance(cfg, dict) or "optimizer" not in cfg):
        raise _no_generation(cfg, schedules)
    # 0.x, or a bare ``optimizer`` (the per-parameter table, read as 0.x reads it)
    given = [k for k, v in mmengine.items() if v is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}= apply to MMEngine configs (optim_wrapper); "
                          "an MMSelfSup 0.x config finds norm layers by its paramwise_options "
                          "regexes")
    return plan_mmcv1(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map,
                      schedules=schedules)


def _tree(params, values):
    return jax.tree.unflatten(jax.tree.structure(params), values)


def build_optimizer(cfg: dict, params, *, steps_per_epoch: int | None = None,
                    name_map="default", module=None, norm_layers=None, dwconv_layers=None,
                    batch_size: int | None = None,
                    layout=None) -> optax.GradientTransformationExtraArgs:
    """The optax transformation an MMSelfSup / MMPretrain config describes, for ``params``.

    ``params`` is any pytree of arrays (nested dicts, Flax Linen ``params``, an
    NNX ``nnx.State``). Leaf names are the key paths joined by '.', translated by
    ``name_map`` ('default' turns Flax spellings into torch ones, see
    ``names.py``; None keeps them) before the paramwise rules see them. With
    ``fp16`` (0.x) or ``AmpOptimWrapper`` (MMEngine), multiply the loss by
    ``oss.loss_scale(opt_state)`` before taking gradients (the scale, divided by the
    accumulation divisor of the micro-step, as torch scales ``loss / k``); the
    transformation unscales them.

    MMEngine configs only: MMEngine finds norm layers and depthwise convolutions
    (``paramwise_cfg``'s ``norm_decay_mult``, ``bias_lr_mult``, ``dwconv_decay_mult``)
    by the torch module type. Pass ``module=`` (the ``nnx.Module`` the params belong
    to, or a ``ModuleKinds`` from ``paramwise.module_kinds_from_linen``) for exact
    kinds, or ``norm_layers=`` / ``dwconv_layers=`` (module paths or regexes);
    otherwise they are guessed from names and shapes, with a warning naming the
    parameters whose group rests on a weak guess. ``batch_size``: the total batch
    size of one iteration, needed when ``auto_scale_lr.enable`` is True.

    ``layout``: ``None`` / ``'per_tensor'`` (default: one array per tensor), ``'flat'``
    (params, gradients and state as one ``[rows, 128]`` buffer per dtype, tensors
    grouped by what selects their code path; ``oss.flat_layout(cfg, params)`` gives
    that layout) or a ``FlatLayout`` of ``params``. A flat transformation takes the
    per-tensor trees (flattened inside) or ``Flat`` buffers of its layout, with the
    same numbers (docs/flat-layout.md).
    """
    extra = dict(module=module, norm_layers=norm_layers, dwconv_layers=dwconv_layers,
                 batch_size=batch_size)
    # the plan reads the params before unboxing: Flax NNX variable types are checked there
    plan = plan_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map,
                          **extra)
    return build_from_plan(plan, unbox(params), layout=layout)


def plan_layout(plan: Plan, params, *, row_multiple: int = 1) -> FlatLayout:
    """The flat layout ``layout='flat'`` uses: tensors grouped by their static signature
    (the rule's flags, slots, static zeros, dtype), so each group is one run of rows."""
    params = unbox(params)
    hs = [{k: (bool(v) if k in plan.rule.flags else v) for k, v in h.items()}
          for h in plan.hparams]
    dtypes = [getattr(x, "dtype", None) or jnp.result_type(x) for x in jax.tree.leaves(params)]
    groups = signature_groups(plan.rule, hs, dtypes)
    return FlatLayout(params, groups=groups, row_multiple=row_multiple)


def flat_layout(cfg: dict, params, *, name_map="default", row_multiple: int = 1,
                **mmengine) -> FlatLayout:
    """``plan_layout`` for a config: the layout of ``build_optimizer(..., layout='flat')``
    (``row_multiple``: e.g. the number of devices its rows are split across; pass the
    result as ``layout=``; ``module=``, ``norm_layers=``, ... as for ``build_optimizer``)."""
    plan = plan_optimizer(cfg, params, name_map=name_map, schedules=False, **mmengine)
    return plan_layout(plan, unbox(params), row_multiple=row_multiple)


def _resolve_layout(layout, plan, params):
    if layout is None or (isinstance(layout, str) and layout == "per_tensor"):
        return None
    if isinstance(layout, str) and layout == "flat":
        return plan_layout(plan, params)
    if isinstance(layout, FlatLayout):
        if layout.treedef != jax.tree.structure(params):
            raise ConfigError("build_optimizer: layout= is a FlatLayout of another params "
                              "tree; build it from these params (oss.flat_layout(cfg, params))")
        return layout
    raise ConfigError(f"build_optimizer: layout={layout!r}; choose from None, 'per_tensor', "
                      "'flat' or a FlatLayout (oss.flat_layout(cfg, params))")


def build_from_plan(plan: Plan, params, *, layout=None) -> optax.GradientTransformationExtraArgs:
    """The transformation a ``Plan`` describes (from any generation's reader), for
    ``params`` (the tree it was planned for); ``layout`` as in ``build_optimizer``."""
    params = unbox(params)
    if plan.clock is None:
        raise ValueError("build_from_plan needs a plan made with schedules=True")
    flat = _resolve_layout(layout, plan, params)
    columns = {k: _tree(params, [h[k] for h in plan.hparams]) for k in plan.rule.defaults}
    lr_override = None
    if plan.lr_override is not None:
        fixed, value, active = plan.lr_override
        lr_override = (_tree(params, list(fixed)), value, active)
    group_index = _tree(params, plan.group_of)  # per-group schedules (OneCycle, hook writes)
    tx = torch_optimizer(plan.rule, lr_schedule=plan.schedules.get("lr"),
                         momentum_schedule=plan.schedules.get("momentum"),
                         weight_decay_schedule=plan.schedules.get("weight_decay"),
                         group_index=group_index, lr_override=lr_override, clip=plan.clip,
                         layout=flat, **columns)
    if plan.loss_scale is not None:
        tx = dynamic_loss_scale(tx, **plan.loss_scale)
    if any(plan.frozen_until):
        tx = skip_frozen(tx, _tree(params, plan.frozen_until))
    if plan.update_interval > 1:
        # with a loss scale the caller divides the loss (oss.loss_scale), as torch scales
        # loss / k: a float16 gradient overflows as torch's does
        tx = accumulate(tx, plan.update_interval, max_iters=plan.clock.max_iters,
                        flush_remainder=plan.flush_remainder, accumulator_dtype=None,
                        divide_loss=plan.loss_scale is not None)
    return clocked(tx) if flat is None else flat_io(clocked(tx), flat)


def describe(cfg: dict, params, *, steps_per_epoch: int | None = None,
             name_map="default", **mmengine) -> list[dict]:
    """Per parameter: name, lr, weight_decay, momentum, lars_exclude, fix_lr, frozen_until.

    The values are the group's base values (what the schedules start from); they do
    not depend on ``steps_per_epoch``, which is only used to check the schedules.
    MMEngine configs add ``group`` (the param group's index, in MMEngine's order) and
    the keys the constructor copied into the group that no optimizer reads
    (``lr_mult``, ``decay_mult``, ``layer_id``, ``lr_scale``), where any group has them.
    ``module=``, ``norm_layers=``, ``dwconv_layers=``, ``batch_size=``: as for
    ``build_optimizer``.
    """
    plan = plan_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map,
                          schedules=steps_per_epoch is not None, **mmengine)
    rows = []
    mkey = plan.rule.momentum_key
    extra = []
    if plan.group_keys is not None:
        present = {k for g in plan.group_keys for k in g}
        extra = [k for k in BOOKKEEPING if k in present and k not in ("fix_lr", "param_name")]
    for i, name in enumerate(plan.names):
        h = plan.hparams[i]
        momentum = None if mkey is None else (h["betas"][0] if mkey == "betas" else h[mkey])
        row = dict(name=name)
        if plan.generation == MMENGINE:
            row["group"] = plan.group_of[i]
        row.update(lr=h["lr"], weight_decay=h.get("weight_decay"), momentum=momentum,
                   lars_exclude=bool(h.get("lars_exclude", False)), fix_lr=plan.fix_lr[i],
                   frozen_until=plan.frozen_until[i])
        for k in extra:
            row[k] = plan.group_keys[i].get(k)
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """``describe``'s rows as an aligned text table (one column per key, floats in
    ``%.6g``), e.g. ``print(oss.format_table(oss.describe(cfg, params)))``."""
    keys = list(dict.fromkeys(k for r in rows for k in r)) or \
        ["name", "lr", "weight_decay", "momentum", "lars_exclude", "fix_lr", "frozen_until"]
    cells = [keys] + [[f"{r.get(k):.6g}" if isinstance(r.get(k), float) else str(r.get(k))
                       for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells)
