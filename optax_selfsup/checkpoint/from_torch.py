"""Continue a PyTorch (mmcv 1.x) run in JAX: an mmcv checkpoint -> params + optimizer state.

An mmcv 1.x checkpoint is ``{'meta': {'epoch', 'iter', ...}, 'state_dict', 'optimizer'}``
(``mmcv.runner.save_checkpoint``); ``meta['iter']`` is the number of finished
iterations, the global iteration the resumed run starts at (mmcv's ``resume`` sets
``runner.iter`` from it). ``from_torch_checkpoint(ckpt, cfg, params_template,
steps_per_epoch=N)`` returns params and the state of ``build_optimizer(cfg, params,
steps_per_epoch=N)`` positioned there:

- params: ``state_dict[name]`` for every template leaf's torch name (``torch_names``),
  same shape (the demo tree, or any tree in torch's layout); for Flax layouts convert
  the state_dict first (``optax_selfsup.models.transfer``) and pass ``convert=``;
- optimizer slots (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ...) and per-tensor
  ``step`` counts from ``optimizer['state']`` (Lamb's from its param groups' ``step``);
  the optimizer's parameter index ``i`` is the ``i``-th parameter in the groups' order,
  i.e. the ``i``-th state_dict key that names a template parameter (torch >= 2.5 groups
  with ``param_names`` are used as such).
  Step counts only where our state keeps them (not for SGD / LARS without dampening,
  RMSprop, Adadelta: their updates never read one); torch SGD/LARS save none, so a
  dampened tensor with a buffer gets the number of updates the config applied to it
  before ``iter`` (only ``step >= 1`` matters to it);
- the global clock at ``iter``; an empty accumulation buffer (mmcv does not save the
  gradients of an unfinished group: its resume restarts the group empty too); the
  fp16 loss scale and growth tracker from ``meta['fp16']['loss_scaler']`` (mmcv's fp16
  hooks keep the ``GradScaler`` state there).

The logged lr / momentum (``current_hparams``) are refreshed by the first ``update``.
Errors name the parameter, the slot and what differs.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..builder import build_optimizer, plan_optimizer
from ..errors import ConfigError
from ..names import torch_names
from ..pytrees import unbox
from ..transforms.accumulate import AccumulateState
from ..transforms.clocked import ClockedState
from ..transforms.frozen import SkipFrozenState
from ..transforms.loss_scale import LossScaleState
from ..transforms.torch_optimizer import TorchOptimizerState

# group keys whose value is fixed by the config (not driven by a schedule): compared
_FIXED_KEYS = ("weight_decay", "eps", "eta", "dampening", "nesterov", "amsgrad", "alpha",
               "centered", "rho", "lr_decay", "lambd", "t0", "momentum_decay", "maximize",
               "bias_correction", "grad_averaging", "max_grad_norm", "trust_clip",
               "always_adapt")


class TorchCheckpointError(ValueError):
    """The torch checkpoint does not fit the config or the parameter tree."""


class Resumed(NamedTuple):
    params: Any
    opt_state: Any
    iteration: int  # the global iteration the next update runs at
    meta: dict


def _numpy(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def load_torch_checkpoint(path):
    """``torch.load`` with ``weights_only=True`` (tensors, dicts, numbers, strings only)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused: show why, never execute it silently
        raise TorchCheckpointError(
            f"{path}: torch.load(weights_only=True) refused it ({type(err).__name__}: {err}); "
            "if you trust the file, load it yourself with weights_only=False and pass the "
            "dict") from None


def _near(name, names) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    return f"; closest: {', '.join(close)}" if close else ""


def _params(state_dict, names, leaves, convert):
    if convert is not None:
        return convert(state_dict)
    out = []
    for name, leaf in zip(names, leaves):
        if name not in state_dict:
            raise TorchCheckpointError(f"parameter {name!r} is not in the checkpoint's state_dict "
                                       f"({len(state_dict)} keys){_near(name, list(state_dict))}")
        value = _numpy(state_dict[name])
        if tuple(value.shape) != tuple(leaf.shape):
            raise TorchCheckpointError(
                f"parameter {name!r}: the checkpoint has shape {tuple(value.shape)}, the template "
                f"{tuple(leaf.shape)} (a Flax layout? convert the state_dict with "
                "optax_selfsup.models.transfer and pass convert=)")
        out.append(jnp.asarray(value, dtype=leaf.dtype))
    return out


def _optimizer_names(optimizer, state_dict, names, param_order):
    """The parameter name of each index of the torch optimizer state."""
    groups = optimizer["param_groups"]
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


def _check_group(name, group, hparams, rule_name):
    for key in _FIXED_KEYS:
        if key in group and key in hparams:
            ours, theirs = hparams[key], group[key]
            if isinstance(ours, (bool, int, float)) and isinstance(theirs, (bool, int, float)):
                if not np.isclose(float(ours), float(theirs), rtol=1e-6, atol=0.0):
                    raise TorchCheckpointError(
                        f"parameter {name!r}: the checkpoint's {rule_name} group has "
                        f"{key}={theirs!r}, this config gives {key}={ours!r}")


def _slots(name, torch_state, template_slots, rule_name):
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
        if tuple(value.shape) != tuple(template.shape):
            raise TorchCheckpointError(f"parameter {name!r}: slot {key!r} has shape "
                                       f"{tuple(value.shape)}, this optimizer "
                                       f"{tuple(template.shape)}")
        out[key] = jnp.asarray(value, dtype=template.dtype)
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
    continuing the torch run an mmcv 1.x checkpoint (a path or the loaded dict) stopped.

    Args:
      path_or_checkpoint: a ``.pth`` path or ``{'meta', 'state_dict', 'optimizer'}``.
      params_template: the Flax params (their tree, shapes and dtypes are kept).
      param_order: the names of the torch optimizer's parameters in order, when the
        state_dict's parameter order is not it (frozen parameters left out of it...).
      convert: ``state_dict -> params`` for trees in another layout (Flax kernels).
      layout: ``build_optimizer``'s ``layout=``: the state of that transformation (e.g.
        ``'flat'``: ``oss.convert_state`` of the per-tensor one); the params stay a tree.
    """
    ckpt = (load_torch_checkpoint(path_or_checkpoint)
            if isinstance(path_or_checkpoint, (str, os.PathLike)) else path_or_checkpoint)
    for key in ("meta", "state_dict", "optimizer"):
        if key not in ckpt:
            raise TorchCheckpointError(f"not an mmcv checkpoint: no {key!r} (keys: "
                                       f"{sorted(ckpt)}); expected meta, state_dict, optimizer")
    meta = dict(ckpt["meta"])
    if "iter" not in meta:
        raise TorchCheckpointError(f"the checkpoint's meta has no 'iter' (keys: {sorted(meta)})")
    it = int(meta["iter"])
    template = unbox(params_template)
    leaves, treedef = jax.tree.flatten(template)
    names = torch_names(template, name_map)
    params = _params(ckpt["state_dict"], names, leaves, convert)
    params = params if convert is not None else jax.tree.unflatten(treedef, params)
    plan = plan_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map)
    tx = build_optimizer(cfg, params, steps_per_epoch=steps_per_epoch, name_map=name_map)
    state = tx.init(params)

    by_name = _optimizer_names(ckpt["optimizer"], ckpt["state_dict"], names, param_order)
    torch_states = ckpt["optimizer"]["state"]
    updates = _update_iterations(plan, it)
    last_was_update = it > 0 and len(updates) > 0 and int(updates[-1]) == it - 1
    scaler = (meta.get("fp16") or {}).get("loss_scaler")
    if plan.hooks.loss_scale is not None and scaler is None and it > 0:
        raise TorchCheckpointError("the config uses fp16 loss scaling but the checkpoint's meta "
                                   "has no fp16.loss_scaler (the GradScaler state mmcv saves)")

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
            _check_group(name, group, plan.hparams[i], plan.rule.name)
            ts = torch_states.get(index, torch_states.get(str(index), {}))
            slots.append(_slots(name, ts, slot_leaves[i], plan.rule.name))
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
    return Resumed(params, opt_state, it, meta)
