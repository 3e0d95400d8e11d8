"""One optax transformation for every torch-style optimizer rule.

``torch_optimizer("SGD", lr=..., momentum=..., lr_schedule=..., ...)`` maps the
rule (``rule.py``) over the parameter leaves in one fused update:

- every hyperparameter is a scalar or a pytree of per-leaf values shaped like the
  params (torch param groups without a loop over groups at step time); per-leaf
  flags (nesterov, amsgrad, lars_exclude, ...) are static and select code paths;
- ``lr`` and the momentum (``betas[0]`` for the Adam family) follow schedules of
  the global iteration, evaluated once per update on the vector of per-leaf bases;
- the iteration is handed in by an outer wrapper (``iteration=``) so no inner
  clock can drift; standing alone, the transformation counts its own updates;
- ``grad_mask`` (a pytree of booleans, traced) marks the leaves that have a
  gradient at this update: the others keep their value and all of their state,
  step counts included (torch skips ``p.grad is None``).

The update returned is ``new_p - p``, so ``optax.apply_updates`` lands on torch's
new parameter value (exactly, whenever the subtraction is exact).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import ConfigError
from ..registry import OPTIMIZERS
from .rule import Rule, check_arguments


@jax.tree_util.register_pytree_node_class
class LeafValues:
    """One scalar per parameter leaf, stored as the single vector the schedule computes
    (one buffer instead of one per leaf); the params' tree structure rides along as
    static data for ``as_tree``."""

    def __init__(self, values, treedef):
        self.values, self.treedef = values, treedef

    def as_tree(self):
        return jax.tree.unflatten(self.treedef, list(self.values))

    def tree_flatten(self):
        return (self.values,), self.treedef

    @classmethod
    def tree_unflatten(cls, treedef, children):
        return cls(children[0], treedef)


class TorchOptimizerState(NamedTuple):
    count: jax.Array  # updates applied: the clock when none is handed in
    step: Any  # per-leaf int32 step counts (torch's state['step'])
    slots: Any  # per-leaf dict of state tensors
    lr: LeafValues  # lr in force at the last update (what mmcv logs)
    momentum: LeafValues | None  # momentum / betas[0] at the last update


REFUSED = {
    "LBFGS": "it needs a closure that re-evaluates the loss",
    "SparseAdam": "it needs sparse gradients, which JAX does not produce",
}


def resolve_rule(name_or_rule) -> Rule:
    """A Rule, or the registered rule of that name (LBFGS / SparseAdam refused)."""
    if isinstance(name_or_rule, Rule):
        return name_or_rule
    if name_or_rule in REFUSED:
        raise ConfigError(f"optimizer.type={name_or_rule!r} is not supported: "
                          f"{REFUSED[name_or_rule]}")
    return OPTIMIZERS.get(name_or_rule, "optimizer.type")


def _per_leaf(value, treedef):
    """A value given once, or per leaf as a pytree shaped like the params."""
    if isinstance(value, (dict, list)) or hasattr(value, "keys"):
        try:
            return treedef.flatten_up_to(value)
        except (ValueError, TypeError):
            pass
    return [value] * treedef.num_leaves


def _stack(values):
    """Per-leaf bases (scalars or tuples of scalars) -> a vector (or tuple of vectors)."""
    return jax.tree.map(lambda *xs: np.asarray(xs, np.float64), *values)


def torch_optimizer(name_or_rule, *, lr_schedule=None, momentum_schedule=None,
                    group_index=None, lr_override=None,
                    **hparams) -> optax.GradientTransformationExtraArgs:
    """A torch.optim-exact optimizer as an optax transformation.

    Args:
      name_or_rule: a registered optimizer name ('SGD', 'LARS', 'Adam', ...) or a Rule.
      lr_schedule, momentum_schedule: ``Schedule`` objects ``(it, base) -> value``
        (``oss.parse_schedule``) applied to each leaf's own base value.
      group_index: each leaf's param-group index for per-group schedule values
        (OneCycle lists); a pytree of ints, one int for all, or None for the
        leaf's position.
      lr_override: ``(fixed, value, active)``: leaves whose ``fixed`` flag is set
        (a per-leaf list or pytree of bools) use lr ``value`` while
        ``active(it)`` holds (MMSelfSup's SimSiamHook).
      **hparams: torch's keyword arguments; each a scalar or a per-leaf pytree.
    """
    rule = resolve_rule(name_or_rule)
    values = check_arguments(rule, hparams)
    mkey = rule.momentum_key

    def leaf_hparams(treedef):
        columns = {k: _per_leaf(v, treedef) for k, v in values.items()}
        leaves = [{k: col[i] for k, col in columns.items()} for i in range(treedef.num_leaves)]
        for h in leaves:
            for flag in rule.flags:
                h[flag] = bool(h[flag])
            rule.validate(h)
        return leaves

    def bases(hs, treedef, schedule, pick):
        groups = (list(range(treedef.num_leaves)) if group_index is None
                  else _per_leaf(group_index, treedef))
        return _stack([schedule.base_value(pick(h), g) for h, g in zip(hs, groups)])

    def momentum_of(h):
        return h["betas"][0] if mkey == "betas" else h[mkey]

    def scheduled(hs, treedef, it):
        """Per-leaf lr and momentum at iteration ``it``, as vectors in leaf order."""
        if lr_schedule is None:
            lrs = jnp.asarray([h["lr"] for h in hs], _dtype())
        else:
            lrs = lr_schedule(it, bases(hs, treedef, lr_schedule, lambda h: h["lr"]))
        if lr_override is not None:
            fixed, value, active = lr_override
            mask = np.asarray([bool(f) for f in _per_leaf(fixed, treedef)])
            lrs = jnp.where(active(it) & mask, jnp.asarray(value, lrs.dtype), lrs)
        moms = None
        if mkey is not None:
            if momentum_schedule is None:
                moms = jnp.asarray([momentum_of(h) for h in hs], _dtype())
            else:
                moms = momentum_schedule(it, bases(hs, treedef, momentum_schedule, momentum_of))
        return lrs.astype(_dtype()), None if moms is None else moms.astype(_dtype())

    def init(params):
        leaves, treedef = jax.tree.flatten(params)
        hs = leaf_hparams(treedef)
        lrs, moms = scheduled(hs, treedef, jnp.zeros((), jnp.int32))
        unflat = lambda xs: None if xs is None else jax.tree.unflatten(treedef, xs)
        return TorchOptimizerState(
            count=jnp.zeros((), jnp.int32),
            step=unflat([jnp.zeros((), jnp.int32) for _ in leaves]),
            slots=unflat([rule.init_slots(p, h) for p, h in zip(leaves, hs)]),
            lr=LeafValues(lrs, treedef),
            momentum=None if moms is None else LeafValues(moms, treedef),
        )

    def update(updates, state, params=None, *, iteration=None, grad_mask=None, **extra):
        del extra
        if params is None:
            raise ValueError(f"{rule.name} needs the params: call update(grads, state, params)")
        grads, treedef = jax.tree.flatten(updates)
        ps = treedef.flatten_up_to(params)
        steps = treedef.flatten_up_to(state.step)
        slots = treedef.flatten_up_to(state.slots)
        masks = [None] * len(grads) if grad_mask is None else treedef.flatten_up_to(grad_mask)
        hs = leaf_hparams(treedef)
        it = state.count if iteration is None else iteration
        lrs, moms = scheduled(hs, treedef, it)
        out_u, out_step, out_slots = [], [], []
        for i, (g, p, t, s, h, mask) in enumerate(zip(grads, ps, steps, slots, hs, masks)):
            # scalars (lr, momentum, step) in at least float32: a float16 step count is
            # inexact past 2048 and a small lr underflows; results keep the stored dtypes
            hdt = jnp.promote_types(p.dtype, jnp.float32)
            h = dict(h, lr=lrs[i].astype(hdt))
            if moms is not None:
                m = moms[i].astype(hdt)
                h[mkey] = (m, h["betas"][1]) if mkey == "betas" else m
            t_new = t + 1
            new_p, new_s = rule.step(g, p, s, h, t_new.astype(hdt))
            new_p = new_p.astype(p.dtype)
            new_s = jax.tree.map(lambda n, o: n.astype(o.dtype), new_s, s)
            if mask is not None:
                new_p = jnp.where(mask, new_p, p)
                new_s = jax.tree.map(functools.partial(jnp.where, mask), new_s, s)
                t_new = jnp.where(mask, t_new, t)
            out_u.append(new_p - p)
            out_step.append(t_new)
            out_slots.append(new_s)
        unflat = lambda xs: None if xs is None else jax.tree.unflatten(treedef, xs)
        new_state = TorchOptimizerState(
            count=state.count + 1, step=unflat(out_step), slots=unflat(out_slots),
            lr=LeafValues(lrs, treedef),
            momentum=None if moms is None else LeafValues(moms, treedef))
        return unflat(out_u), new_state

    return optax.GradientTransformationExtraArgs(init, update)


def _dtype():
    return jax.dtypes.canonicalize_dtype(jnp.float64)
