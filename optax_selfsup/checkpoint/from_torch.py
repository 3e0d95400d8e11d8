"""Continue a PyTorch (mmcv 1.x or MMEngine) run in JAX: a torch checkpoint -> params +
optimizer state.

``from_torch_checkpoint(ckpt, cfg, params_template, steps_per_epoch=N)`` reads the
checkpoint (``torch_formats.py``: the format is detected, mmcv 1.x's
``{'meta': {'epoch', 'iter', ...}, 'state_dict', 'optimizer'}`` or MMEngine's, which adds
``message_hub`` and ``param_schedulers``) and returns params and the state of
``build_optimizer(cfg, params, steps_per_epoch=N)`` positioned at ``meta['iter']``, the
number of finished iterations, where mmcv's and MMEngine's ``resume`` restart. An MMEngine
checkpoint is first checked against the config (``from_mmengine.py``: its schedulers'
settings and steps, its groups' scheduled values, its loss scaler's settings, where the
resume restarts):

- params: ``state_dict[name]`` for every template leaf's torch name (``torch_names``),
  passed through ``convert(flax_name, value)``: ``oss.torch_to_flax_layout`` for a
  Flax tree (Conv / Dense kernels transposed), none for a tree in torch's layout
  (the demo tree). A template with Flax ``kernel`` leaves and no ``convert`` is
  refused: a square Dense kernel would load transposed without a shape error;
- optimizer slots (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ...) and per-tensor
  ``step`` counts from ``optimizer['state']`` (Lamb's from its param groups'
  ``step``); each slot shaped like its parameter goes through the same ``convert`` as
  the parameter (scalar slots such as NAdam's ``mu_product`` as they are). The
  optimizer's parameter index ``i`` is the ``i``-th parameter in the groups' order,
  i.e. the ``i``-th state_dict key that names a template parameter (torch >= 2.5
  groups with ``param_names`` are used as such).
  Step counts only where our state keeps them (not for SGD / LARS without dampening,
  RMSprop, Adadelta: their updates never read one); torch SGD/LARS save none, so a
  dampened tensor with a buffer gets the number of updates the config applied to it
  before ``iter`` (only ``step >= 1`` matters to it);
- the optimizer type is told from the ``param_groups`` keys (``torch_optimizers.py``)
  and must be the config's; so must the fixed hyperparameters of every group;
- the global clock at ``iter``; an empty accumulation buffer (mmcv does not save the
  gradients of an unfinished group: its resume restarts the group empty too); the
  fp16 loss scale and growth tracker from ``meta['fp16']['loss_scaler']`` (mmcv's fp16
  hooks keep the ``GradScaler`` state there; MMEngine's ``AmpOptimWrapper`` in
  ``optimizer['loss_scaler']``).

The logged lr / momentum (``current_hparams``) are refreshed by the first ``update``.
Errors name the parameter, the slot and what differs.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..builder import build_optimizer, plan_optimizer
from ..errors import ConfigError
from ..names import leaf_names, torch_names
from ..pytrees import unbox
from ..transforms.accumulate import AccumulateState, LossDivisorState, group_divisor
from ..transforms.clocked import ClockedState
from ..transforms.frozen import SkipFrozenState
from ..transforms.loss_scale import LossScaleState
from ..transforms.torch_optimizer import TorchOptimizerState
from .errors import TorchCheckpointError
from .from_mmengine import check_mmengine_run
from .tensor_layouts import to_numpy as _numpy
from .torch_formats import load_torch_checkpoint, read_torch_checkpoint
from .torch_optimizers import check_group, check_optimizer_type

__all__ = ["Resumed", "TorchCheckpointError", "from_torch_checkpoint", "load_torch_checkpoint"]


class Resumed(NamedTuple):
    params: Any
    opt_state: Any
    iteration: int  # the global iteration the next update runs at
    meta: dict


def _near(name, names) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    return f"; closest: {', '.join(close)}" if close else ""


def _identity(flax_name, value):
    return value


def _converter(convert, flax_names, leaves):
    """``convert`` checked: a function ``(flax_name, value) -> value``; None only for a
    template without Flax kernels (whose torch layout differs)."""
    if convert is None:
        kernels = [n for n, leaf in zip(flax_names, leaves)
                   if n.rsplit(".", 1)[-1] == "kernel" and len(np.shape(leaf)) >= 2]
        if kernels:
            raise TorchCheckpointError(
                f"params_template has {len(kernels)} Flax kernel(s) ({', '.join(kernels[:3])}"
                f"{', ...' if len(kernels) > 3 else ''}), laid out unlike torch's weights (a "
                "square Dense kernel would load transposed, without a shape error): pass "
                "convert=oss.torch_to_flax_layout (or convert=lambda name, x: x for kernels "
                "stored in torch's layout)")
        return _identity
    if not callable(convert):
        raise ConfigError(f"convert={convert!r} must be a function (flax_name, value) -> value, "
                          "such as oss.torch_to_flax_layout")
    try:
        inspect.signature(convert).bind("name", None)
    except TypeError:
        raise ConfigError(f"convert={convert!r} must take (flax_name, value): it is called for "
                          "each parameter and each of its optimizer slots, e.g. "
                          "oss.torch_to_flax_layout") from None
    except ValueError:  # no signature to inspect (a builtin): call it as it is
        pass
    return convert


def _converted(convert, flax_name, value, name, what, template):
    """``convert(flax_name, value)`` as an array of the template's shape, else an error."""
    out = np.asarray(convert(flax_name, value))
    if tuple(out.shape) == tuple(template.shape):
        return jnp.asarray(out, dtype=template.dtype)
    mine = "the template" if what == "the checkpoint" else "this optimizer"
    if convert is _identity:
        hint = " (a Flax layout? pass convert=oss.torch_to_flax_layout)" \
            if what == "the checkpoint" else ""
        raise TorchCheckpointError(f"parameter {name!r}: {what} has shape {tuple(value.shape)}, "
                                   f"{mine} {tuple(template.shape)}{hint}")
    raise TorchCheckpointError(
        f"parameter {name!r} (Flax {flax_name!r}): {what} has shape {tuple(value.shape)}, "
        f"{tuple(out.shape)} after convert, {mine} {tuple(template.shape)}")


def _params(state_dict, names, flax_names, leaves, convert):
    out = []
    for name, flax_name, leaf in zip(names, flax_names, leaves):
        if name not in state_dict:
            raise TorchCheckpointError(f"parameter {name!r} is not in the checkpoint's state_dict "
                                       f"({len(state_dict)} keys){_near(name, list(state_dict))}")
        out.append(_converted(convert, flax_name, _numpy(state_dict[name]), name,
                              "the checkpoint", leaf))
    return out


def _optimizer_names(groups, state_dict, names, param_order):
    """The parameter name of each index of the torch optimizer state."""
    indices = [i for g in groups for i in g["params"]]
    if param_order is None and all("param_names" in g for g in groups):
        param_order = [n for g in groups for n in g["param_names"]]
    if param_order is None:
        wanted = set(names)
        param_order = [k for k in state_dict if k in wanted]
    param_order = list(param_order)
    if len(param_order) != len(indices):
        raise TorchCheckpointError(
            f"the torch optimizer holds {len(indices)} parameters but {len(param_order)} "
            "state_dict keys name parameters of the template; pass param_order= (the names "
            "in the order the optimizer was given them)")
    unknown = [n for n in param_order if n not in set(names)]
    if unknown:
        raise TorchCheckpointError(f"the torch optimizer has state for {unknown[0]!r}, which is "
                                   f"not a template parameter{_near(unknown[0], names)}")
    group_of = {i: g for g in groups for i in g["params"]}
    return {n: (i, group_of[i]) for n, i in zip(param_order, indices)}


def _without_schedule_keys(group):
    """A param group without what schedulers add (``initial_lr``; MMEngine's momentum
    schedulers keep ``momentum`` next to an Adam group's ``betas``): torch's own keys."""
    return {k: v for k, v in group.items() if not str(k).startswith("initial_")
            and not (k == "momentum" and "betas" in group)}


def _update_iterations(plan, it):
    """Global iterations < ``it`` at which the optimizer stepped (without fp16 skips)."""
    k, hooks = plan.hooks.update_interval, plan.hooks
    max_iters = plan.clock.max_iters
    its = np.arange(it)
    if k == 1:
        return its
    is_update = (its + 1) % k == 0
    if hooks.flush_remainder and max_iters % k:
        is_update |= its == max_iters - 1
    return its[is_update]


def _slots(name, flax_name, torch_state, template_slots, rule_name, torch_shape, convert):
    theirs = {k for k in torch_state if k != "step"}
    ours = set(template_slots)
    if torch_state and theirs != ours:
        raise TorchCheckpointError(
            f"parameter {name!r}: the torch optimizer state has "
            f"{', '.join(sorted(theirs)) or 'no slots'}; this optimizer ({rule_name}) keeps "
            f"{', '.join(sorted(ours)) or 'none'} (another optimizer type or momentum?)")
    out = {}
    for key, template in template_slots.items():
        if not torch_state:
            out[key] = template
            continue
        value = _numpy(torch_state[key])
        # laid out as its parameter: the same conversion (scalar slots as they are)
        fn = convert if tuple(value.shape) == torch_shape else _identity
        out[key] = _converted(fn, flax_name, value, name, f"slot {key!r}", template)
    return out


def _replace(tree, fill):
    """Rebuild ``tree`` with ``fill(node)`` applied to every optax_selfsup state in it."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        tree = type(tree)(*(_replace(getattr(tree, f), fill) for f in tree._fields))
        return fill(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_replace(x, fill) for x in tree)
    if isinstance(tree, dict):
        return {k: _replace(v, fill) for k, v in tree.items()}
    return tree


def from_torch_checkpoint(path_or_checkpoint, cfg: dict, params_template, *,
                          steps_per_epoch: int | None = None, name_map="default",
                          param_order=None, convert=None, layout=None) -> Resumed:
    """Params and optimizer state of ``build_optimizer(cfg, params, steps_per_epoch=...)``
    continuing the torch run an mmcv 1.x or MMEngine checkpoint (a path or the loaded
    dict) stopped.

    Args:
      path_or_checkpoint: a ``.pth`` path or ``{'meta', 'state_dict', 'optimizer'}`` (and,
        from MMEngine's ``Runner``, ``'param_schedulers'``, ``'message_hub'``).
      cfg: the config the torch run was trained with (MMSelfSup 0.x for mmcv checkpoints,
        MMEngine's for MMEngine checkpoints).
      params_template: the params (their tree, shapes and dtypes are kept).
      param_order: the names of the torch optimizer's parameters in order, when the
        state_dict's parameter order is not it (frozen parameters left out of it...).
      convert: ``(flax_name, torch_value) -> value`` applied to every parameter and to
        each of its optimizer slots shaped like it: ``oss.torch_to_flax_layout`` for
        Flax trees (``flax_name`` is the template leaf's dotted path). Needed when the
        template has Flax ``kernel`` leaves.
      layout: ``build_optimizer``'s ``layout=``: the state of that transformation (e.g.
        ``'flat'``: ``oss.convert_state`` of the per-tensor one); the params stay a tree.
    """
    run = read_torch_checkpoint(path_or_checkpoint)
    it, source = run.iteration, run.source
    template = unbox(params_template)
    leaves, treedef = jax.tree.flatten(template)
    flax_names = leaf_names(template)
    names = torch_names(template, name_map)
    convert = _converter(convert, flax_names, leaves)
    params = jax.tree.unflatten(treedef, _params(run.state_dict, names, flax_names, leaves,
                                                 convert))
    plan = plan_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map)
    check_optimizer_type(plan.rule, [_without_schedule_keys(g) for g in run.param_groups],
                         source)
    by_name = _optimizer_names(run.param_groups, run.state_dict, names, param_order)
    if run.format == "mmengine":
        check_mmengine_run(run, plan, cfg, by_name, names)
    tx = build_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map)
    state = jax.jit(tx.init)(params)  # one compilation, not one per op of the schedules

    torch_states = run.states
    updates = _update_iterations(plan, it)
    last_was_update = it > 0 and len(updates) > 0 and int(updates[-1]) == it - 1
    scaler = run.loss_scaler
    if plan.hooks.loss_scale is not None and scaler is None and it > 0:
        raise TorchCheckpointError(f"{source}: the config uses fp16 loss scaling but the "
                                   "checkpoint has no GradScaler state (it would be in "
                                   f"{run.scaler_key}): it was written without one")

    def optimizer_state(s: TorchOptimizerState) -> TorchOptimizerState:
        slot_leaves = treedef.flatten_up_to(s.slots)
        step_leaves = treedef.flatten_up_to(s.step)  # None: the rule keeps no step count
        steps, slots = [], []
        for i, name in enumerate(names):
            if name not in by_name:  # not given to the torch optimizer: never updated
                steps.append(step_leaves[i])
                slots.append(slot_leaves[i])
                continue
            index, group = by_name[name]
            fixed = {k: v for k, v in plan.hparams[i].items() if k not in plan.schedules}
            check_group(name, group, fixed, plan.rule.name)
            ts = torch_states.get(index, torch_states.get(str(index), {}))
            torch_shape = tuple(np.shape(run.state_dict[name]))
            slots.append(_slots(name, flax_names[i], ts, slot_leaves[i], plan.rule.name,
                                torch_shape, convert))
            if step_leaves[i] is None:
                steps.append(None)
                continue
            if plan.rule.group_step:  # kept in the param group (Lamb), counting every update
                t = int(group.get("step", 0))
            elif "step" in ts:
                t = int(round(float(_numpy(ts["step"]))))
            elif ts:
                t = int(np.sum(updates >= plan.frozen_until[i]))
            else:
                t = 0
            steps.append(jnp.asarray(t, jnp.int32))
        return s._replace(count=jnp.asarray(len(updates), s.count.dtype),
                          step=jax.tree.unflatten(treedef, steps),
                          slots=jax.tree.unflatten(treedef, slots))

    def fill(node):
        if isinstance(node, TorchOptimizerState):
            return optimizer_state(node)
        if isinstance(node, ClockedState):
            return node._replace(iteration=jnp.asarray(it, node.iteration.dtype))
        if isinstance(node, AccumulateState):
            return node._replace(count=jnp.asarray(it, node.count.dtype),
                                 updated=jnp.asarray(last_was_update))
        if isinstance(node, LossDivisorState):  # fp16: what the next loss is divided by
            return node._replace(loss_divisor=group_divisor(
                it, plan.hooks.update_interval, plan.clock.max_iters,
                plan.hooks.flush_remainder))
        if isinstance(node, SkipFrozenState):
            return node._replace(count=jnp.asarray(it, node.count.dtype))
        if isinstance(node, LossScaleState) and scaler is not None:
            return node._replace(scale=jnp.asarray(float(scaler["scale"]), node.scale.dtype),
                                 growth_tracker=jnp.asarray(int(scaler["_growth_tracker"]),
                                                            node.growth_tracker.dtype))
        return node

    try:
        opt_state = _replace(state, fill)
    except KeyError as err:
        raise ConfigError(f"the checkpoint's optimizer state lacks {err}") from None
    if layout is not None and not (isinstance(layout, str) and layout == "per_tensor"):
        from .convert import convert_state

        other = build_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map,
                                layout=layout)
        opt_state = convert_state(opt_state, jax.eval_shape(other.init, params))
    return Resumed(params, opt_state, it, run.meta)
