"""A plan -> one optax transformation; the public entry points (SPEC sections 1 to 6).

``build_optimizer(cfg, params, steps_per_epoch=N)`` has the config read into a
``Plan`` (``config/``), then assembles, outermost first::

    clocked -> accumulate (update_interval) -> skip_frozen -> dynamic_loss_scale
            -> torch_optimizer (with the grad_clip fused in)

Every parameter-wise value is a per-leaf constant; the one global clock lives
in ``clocked``. ``describe(cfg, params)`` shows what each parameter gets.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .config.mmcv1 import plan_mmcv1, simsiam_active
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


def plan_optimizer(cfg: dict, params, *, steps_per_epoch=None, name_map="default",
                   schedules: bool = True) -> Plan:
    """Read the config for ``params`` into a ``Plan``; ``schedules=False`` skips the clock
    and schedules (the per-parameter table needs neither, nor ``steps_per_epoch``)."""
    return plan_mmcv1(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map,
                      schedules=schedules)


def _tree(params, values):
    return jax.tree.unflatten(jax.tree.structure(params), values)


def build_optimizer(cfg: dict, params, *, steps_per_epoch: int | None = None,
                    name_map="default", layout=None) -> optax.GradientTransformationExtraArgs:
    """The optax transformation an MMSelfSup config describes, for ``params``.

    ``params`` is any pytree of arrays (nested dicts, Flax Linen ``params``, an
    NNX ``nnx.State``). Leaf names are the key paths joined by '.', translated by
    ``name_map`` ('default' turns Flax spellings into torch ones, see
    ``names.py``; None keeps them) before the paramwise regexes see them. With
    ``fp16``, multiply the loss by ``oss.loss_scale(opt_state)`` before taking
    gradients; the transformation unscales them.

    ``layout``: ``None`` / ``'per_tensor'`` (default: one array per tensor), ``'flat'``
    (params, gradients and state as one ``[rows, 128]`` buffer per dtype, tensors
    grouped by what selects their code path; ``oss.flat_layout(cfg, params)`` gives
    that layout) or a ``FlatLayout`` of ``params``. A flat transformation takes the
    per-tensor trees (flattened inside) or ``Flat`` buffers of its layout, with the
    same numbers (docs/flat-layout.md).
    """
    params = unbox(params)
    plan = plan_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map)
    return build_from_plan(plan, params, layout=layout)


def plan_layout(plan: Plan, params, *, row_multiple: int = 1) -> FlatLayout:
    """The flat layout ``layout='flat'`` uses: tensors grouped by their static signature
    (the rule's flags, slots, static zeros, dtype), so each group is one run of rows."""
    params = unbox(params)
    hs = [{k: (bool(v) if k in plan.rule.flags else v) for k, v in h.items()}
          for h in plan.hparams]
    dtypes = [getattr(x, "dtype", None) or jnp.result_type(x) for x in jax.tree.leaves(params)]
    groups = signature_groups(plan.rule, hs, dtypes)
    return FlatLayout(params, groups=groups, row_multiple=row_multiple)


def flat_layout(cfg: dict, params, *, name_map="default", row_multiple: int = 1) -> FlatLayout:
    """``plan_layout`` for a config: the layout of ``build_optimizer(..., layout='flat')``
    (``row_multiple``: e.g. the number of devices its rows are split across; pass the
    result as ``layout=``)."""
    params = unbox(params)
    plan = plan_optimizer(cfg, params, name_map=name_map, schedules=False)
    return plan_layout(plan, params, row_multiple=row_multiple)


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
    if plan.simsiam is not None and any(plan.fix_lr):
        lr_override = (_tree(params, plan.fix_lr), plan.simsiam.lr, simsiam_active(plan))
    group_index = _tree(params, plan.group_of)  # per-group schedule lists (OneCycle)
    hooks = plan.hooks
    tx = torch_optimizer(plan.rule, lr_schedule=plan.lr_schedule,
                         momentum_schedule=plan.momentum_schedule, group_index=group_index,
                         lr_override=lr_override, clip=hooks.grad_clip, layout=flat,
                         **columns)
    if hooks.loss_scale is not None:
        tx = dynamic_loss_scale(tx, **hooks.loss_scale)
    if any(plan.frozen_until):
        tx = skip_frozen(tx, _tree(params, plan.frozen_until))
    if hooks.update_interval > 1:
        tx = accumulate(tx, hooks.update_interval, max_iters=plan.clock.max_iters,
                        flush_remainder=hooks.flush_remainder, accumulator_dtype=None)
    return clocked(tx) if flat is None else flat_io(clocked(tx), flat)


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
