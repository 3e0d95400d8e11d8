"""One optax transformation for every torch-style optimizer rule.

``torch_optimizer("SGD", lr=..., momentum=..., lr_schedule=..., ...)`` maps the
rule (``rule.py``) over the parameter leaves in one fused update:

- every hyperparameter is a scalar or a pytree of per-leaf values shaped like the
  params (torch param groups without a loop over groups at step time); per-leaf
  flags (nesterov, amsgrad, lars_exclude, ...) are static and select code paths;
- ``lr``, the momentum (``betas[0]`` for the Adam family) and ``weight_decay``
  follow schedules of the global iteration, evaluated once per update on the
  vector of the distinct per-leaf bases;
- the iteration is handed in by an outer wrapper (``iteration=``) so no inner
  clock can drift; standing alone, the transformation counts its own updates;
- ``grad_mask`` (a pytree of booleans, traced) marks the leaves that have a
  gradient at this update: the others keep their value and all of their state,
  step counts included (torch skips ``p.grad is None``), except a count kept per
  param group (``Rule.group_step``: Lamb), which advances at every update;
- a rule's cross-tensor pass (``Rule.prepare``: Lamb's global gradient clip) runs
  over all gradients before the per-tensor steps.

The update returned is ``new_p - p``, so ``optax.apply_updates`` lands on torch's
new parameter value (exactly, whenever the subtraction is exact).
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import ConfigError
from ..names import leaf_names
from ..pytrees import boxed_like, is_one_value, per_leaf, unbox
from ..registry import OPTIMIZERS
from ..tree_checks import check_gradients, check_structure
from ..validation import check_params
from . import adam_family, flat_optimizer, lamb, sgd_family
from .clip import norm_dtype
from .flat_io import flat_io
from .grad_clip import GradClip, clip_gradients
from .rule import Rule, check_arguments, check_shared_args


class TorchOptimizerState(NamedTuple):
    """State of ``torch_optimizer``: the update count, per-leaf step counts where the
    rule reads torch's ``state['step']``, the per-leaf slots (torch's ``state[p]``
    buffers: ``momentum_buffer``, ``exp_avg``, ...), and the last update's per-leaf lr,
    momentum, weight decay and pre-clip gradient norm (what ``oss.current_hparams``
    reports)."""

    count: jax.Array  # updates applied: the clock when none is handed in
    # per-leaf int32 step counts (torch's state['step']), shaped like the params; None
    # for a tensor whose rule never reads it (SGD / LARS without dampening, RMSprop,
    # Adadelta: no buffer to pass through every call). Not one vector: each tensor's
    # slice of it would make every tensor's kernels distinct, and XLA compiles identical
    # kernels once (the ViT-B/16 AdamW step compiled 2.1-2.6x slower with a vector;
    # parity_tests/test_optimizer_groups.py guards this)
    step: Any
    slots: Any  # per-leaf dict of state tensors (torch's state names)
    lr: jax.Array  # per-leaf lr at the last call's iteration, a vector in leaf order
    momentum: jax.Array | None  # per-leaf momentum / betas[0] likewise
    grad_norm: jax.Array | None = None  # with a norm ``clip``: the last update's pre-clip norm
    # per-leaf weight decay likewise, when a schedule moves it (else None)
    weight_decay: jax.Array | None = None
    # refreshed at every call, also when a wrapper keeps the rest of the state (an
    # accumulation micro-step, an fp16-skipped update): what mmcv logs at that iteration
    LIVE_FIELDS = ("lr", "momentum", "weight_decay")


# the built-in rules, registered once
for _rule in sgd_family.RULES + adam_family.RULES + lamb.RULES:
    OPTIMIZERS.register(_rule.name, _rule)

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


def registered_rule(name) -> Rule | None:
    """The registered Rule called ``name``, or None (not a string, or not registered)."""
    return OPTIMIZERS.get(name, "optimizer.type") if isinstance(name, str) and \
        name in OPTIMIZERS else None


def _stack(values):
    """Per-leaf bases (scalars or tuples of scalars) -> a vector (or tuple of vectors)."""
    return jax.tree.map(lambda *xs: np.asarray(xs, np.float64), *values)


def _distinct(keys):
    """The distinct keys in first-seen order and each key's index into them."""
    position: dict = {}
    index = np.asarray([position.setdefault(k, len(position)) for k in keys], np.int32)
    return list(position), index


def _concrete(value) -> bool:
    if isinstance(value, tuple):
        return all(map(_concrete, value))
    return isinstance(value, (numbers.Number, np.generic)) or value is None


def stores_step(rule: Rule, hs, treedef) -> list[bool]:
    """Per leaf: whether the state keeps a step count for it (the rule reads one). All
    True when the params tree has None nodes: the None standing for "no step count"
    must not be confused with them (``params_structure``)."""
    if treedef.num_leaves != jax.tree.structure(treedef.unflatten([0] * treedef.num_leaves),
                                                is_leaf=_is_none).num_leaves:
        return [True] * len(hs)
    return [bool(rule.reads_step(h)) for h in hs]


def _is_none(x) -> bool:
    return x is None


def params_structure(state: TorchOptimizerState):
    """The params' tree structure, read off the state's per-leaf step counts: as they
    are when every leaf keeps one, else with each None as a leaf (``stores_step``)."""
    plain = jax.tree.structure(state.step)
    if plain.num_leaves == np.shape(state.lr)[0]:
        return plain
    return jax.tree.structure(state.step, is_leaf=_is_none)


def vector_at(values, it, dtype):
    """Per-leaf values (numbers, 0-d arrays or schedules ``count -> value``) at ``it``."""
    if all(isinstance(v, numbers.Number) for v in values):
        return jnp.asarray(np.asarray(values, np.float64), dtype)
    distinct = {id(v): v for v in values}
    if len(distinct) == 1:
        (v,) = distinct.values()
        return jnp.full((len(values),), v(it) if callable(v) else v, dtype)
    at = {i: jnp.asarray(v(it) if callable(v) else v, dtype) for i, v in distinct.items()}
    return jnp.stack([at[id(v)] for v in values])


def torch_optimizer(name_or_rule, *, lr_schedule=None, momentum_schedule=None,
                    weight_decay_schedule=None, group_index=None, lr_override=None,
                    clip=None, layout=None, **hparams) -> optax.GradientTransformationExtraArgs:
    """A torch.optim-exact optimizer as an optax transformation.

    Args:
      name_or_rule: a registered optimizer name ('SGD', 'LARS', 'Adam', ...) or a Rule.
      lr_schedule, momentum_schedule, weight_decay_schedule: schedule objects
        ``(it, bases) -> values`` (``oss.parse_schedule``, or an MMEngine
        ``param_scheduler`` through ``schedules.GroupSchedule``) applied to each
        leaf's own base value (what the config builder uses; the values given must
        then be numbers). ``bases`` holds the distinct keys ``schedule.base_value(v,
        group)`` of the leaves, stacked (a vector, or a tuple of vectors).
      group_index: each leaf's param-group index for per-group schedule values
        (OneCycle lists, which must then have one value per group 0..max); a pytree
        of ints, one int for all, or None for the leaf's position (one group per leaf,
        as MMSelfSup 0.x builds them).
      lr_override: ``(fixed, value, active)``: leaves whose ``fixed`` flag is set
        (a per-leaf pytree of bools) use lr ``value`` while ``active(it)`` holds
        (MMSelfSup's SimSiamHook).
      clip: ``(max_norm, norm_type)`` or a ``GradClip`` (``transforms/grad_clip.py``):
        torch ``clip_grad_norm_`` (what ``optax.chain(oss.clip_grad_norm(...), this)``
        does) or ``clip_grad_value_`` on the gradients first, fused into the update: a
        rule that needs a gradient's 2-norm (LARS) gets it from the norm clip's
        per-tensor norms as ``h['grad_norm']`` instead of reading the clipped gradient
        again. Equal to the chain up to float32 rounding of that norm.
      layout: a ``FlatLayout`` of the params: the same steps on its ``Flat`` buffers
        (``flat_optimizer.py``, docs/flat-layout.md); None: one array per tensor.
      **hparams: torch's keyword arguments; each one value for all leaves or a
        pytree of per-leaf values shaped like the params. ``lr``, the momentum
        (``momentum``, or ``betas[0]`` for the Adam family) and ``weight_decay`` may
        also be optax-style schedules ``count -> value``, where ``count`` is the global
        iteration handed in by an outer wrapper (``oss.clocked``) or, standing alone,
        the number of updates this transformation has applied.

    Every per-leaf flag (nesterov, amsgrad, lars_exclude, ...) is static and selects
    a code path; the other values may be traced (``optax.inject_hyperparams``).
    """
    rule = resolve_rule(name_or_rule)
    clip = GradClip.of(clip)
    values = check_arguments(rule, hparams)
    mkey = rule.momentum_key
    movable = [k for k in ("lr", mkey, "weight_decay") if k in rule.defaults]
    for key, value in values.items():
        if key not in movable and callable(value) and is_one_value(value):
            raise ConfigError(f"{rule.name}: {key} is a schedule; only "
                              f"{', '.join(movable)} may follow a schedule")
    if weight_decay_schedule is not None and "weight_decay" not in rule.defaults:
        raise ConfigError(f"{rule.name} has no weight_decay to schedule")
    # the weight decay is tracked (in the state, and handed to the rule as a value of
    # the iteration) only when something moves it: a constant keeps the rule's static
    # shortcuts (a weight decay of 0 costs nothing)
    wd_moves = weight_decay_schedule is not None or (
        "weight_decay" in values and callable(values["weight_decay"]))
    cache: dict = {}

    def leaf_hparams(treedef):
        """Per leaf: a dict of torch's keyword arguments (computed once per tree shape)."""
        if treedef not in cache:
            columns = {k: per_leaf(v, treedef, k, rule.defaults[k], rule.name)
                       for k, v in values.items()}
            leaves = [{k: col[i] for k, col in columns.items()}
                      for i in range(treedef.num_leaves)]
            for h in leaves:
                for flag in rule.flags:
                    h[flag] = bool(h[flag])
                if all(_concrete(v) for v in h.values()):
                    rule.validate(h)
            check_shared_args(rule, leaves)
            cache[treedef] = leaves
        return cache[treedef]

    def distinct_bases(hs, treedef, schedule, pick, what):
        """The distinct schedule bases (a vector, or a tuple of vectors) and each leaf's
        index into them: the schedule runs once per distinct group, not per leaf."""
        picked = [pick(h) for h in hs]
        if schedule is None:
            keys = [("number", v) if isinstance(v, numbers.Number) else ("object", id(v))
                    for v in picked]
            unique, index = _distinct(keys)
            first = {k: v for k, v in zip(keys, picked)}
            return [first[k] for k in unique], index
        if not all(_concrete(v) for v in picked):
            raise ConfigError(f"{rule.name}: {what} must be numbers when a config schedule "
                              f"(lr_config / momentum_config, param_scheduler) drives it")
        groups = (list(range(treedef.num_leaves)) if group_index is None
                  else [int(g) for g in per_leaf(group_index, treedef, "group_index")])
        per_group = getattr(schedule, "per_group_options", dict)()
        for key, listed in per_group.items():  # mmcv's format_param: one value per group
            if len(listed) != max(groups, default=-1) + 1:
                raise ConfigError(
                    f"{rule.name}: the {what} schedule's {key} has {len(listed)} per-group "
                    f"values but there are {max(groups, default=-1) + 1} param groups "
                    "(group_index, or one group per leaf without it)")
        unique, index = _distinct([schedule.base_value(v, g) for v, g in zip(picked, groups)])
        return _stack(unique), index

    def momentum_of(h):
        return h["betas"][0] if mkey == "betas" else h[mkey]

    def scheduled(hs, treedef, it):
        """lr, momentum and weight decay at iteration ``it``: (values of the distinct
        groups, each leaf's index into them) for each; the momentum pair is (None, None)
        without one, the weight-decay pair when nothing moves it."""
        dtype = _dtype()
        bases, index = distinct_bases(hs, treedef, lr_schedule, lambda h: h["lr"], "lr")
        lrs = vector_at(bases, it, dtype) if lr_schedule is None else lr_schedule(it, bases)
        if lr_override is not None:
            fixed, value, active = lr_override
            flags = [bool(f) for f in per_leaf(fixed, treedef, "fix_lr")]
            pairs, index = _distinct(list(zip(index.tolist(), flags)))
            lrs = lrs[np.asarray([i for i, _ in pairs])]
            mask = np.asarray([f for _, f in pairs])
            lrs = jnp.where(active(it) & mask, jnp.asarray(value, lrs.dtype), lrs)
        moms = (None, None)
        if mkey is not None:
            mbases, mindex = distinct_bases(hs, treedef, momentum_schedule, momentum_of,
                                            "momentum")
            mvals = (vector_at(mbases, it, dtype) if momentum_schedule is None
                     else momentum_schedule(it, mbases))
            moms = (jnp.asarray(mvals).astype(dtype), mindex)
        wds = (None, None)
        if wd_moves:
            wbases, windex = distinct_bases(hs, treedef, weight_decay_schedule,
                                            lambda h: h["weight_decay"], "weight_decay")
            wvals = (vector_at(wbases, it, dtype) if weight_decay_schedule is None
                     else weight_decay_schedule(it, wbases))
            wds = (jnp.asarray(wvals).astype(dtype), windex)
        return (jnp.asarray(lrs).astype(dtype), index), moms, wds

    def per_leaf_vector(pair):
        values, index = pair
        return None if values is None else jnp.take(values, index)

    if layout is not None:
        return flat_io(flat_optimizer.flat_transformation(rule, layout, leaf_hparams,
                                                          scheduled, clip, mkey), layout)

    def init(params):
        check_params(params)  # before unbox: it reads the Flax NNX variable types
        params = unbox(params)
        leaves, treedef = jax.tree.flatten(params)
        hs = leaf_hparams(treedef)
        lrs, moms, wds = scheduled(hs, treedef, jnp.zeros((), jnp.int32))
        unflat = lambda xs: jax.tree.unflatten(treedef, xs)
        return TorchOptimizerState(
            count=jnp.zeros((), jnp.int32),
            step=unflat([jnp.zeros((), jnp.int32) if keep else None
                         for keep in stores_step(rule, hs, treedef)]),
            slots=unflat([rule.init_slots(p, h) for p, h in zip(leaves, hs)]),
            lr=per_leaf_vector(lrs), momentum=per_leaf_vector(moms),
            grad_norm=(jnp.zeros((), norm_dtype(leaves))
                       if clip is not None and clip.kind == "norm" else None),
            weight_decay=per_leaf_vector(wds))

    def update(updates, state, params=None, *, iteration=None, grad_mask=None,
               hparams_only=False, **extra):
        del extra
        check_update_inputs(rule.name, updates, state, params)
        it = state.count if iteration is None else iteration
        if hparams_only:  # only the values in force at ``it`` (select.update_if)
            treedef = jax.tree.structure(unbox(updates))
            lrs, moms, wds = scheduled(leaf_hparams(treedef), treedef, it)
            return updates, state._replace(lr=per_leaf_vector(lrs),
                                           momentum=per_leaf_vector(moms),
                                           weight_decay=per_leaf_vector(wds))
        if params is None:
            raise ValueError(f"{rule.name} needs the params: call update(grads, state, params)")
        grads, treedef = jax.tree.flatten(unbox(updates))
        ps = treedef.flatten_up_to(unbox(params))
        steps = treedef.flatten_up_to(state.step)
        slots = treedef.flatten_up_to(state.slots)
        masks = [None] * len(grads) if grad_mask is None else treedef.flatten_up_to(grad_mask)
        hs = leaf_hparams(treedef)
        lrs, moms, wds = scheduled(hs, treedef, it)
        grad_norm, leaf_norms = state.grad_norm, [None] * len(grads)
        if clip is not None and grads:
            grads, total, leaf_norms = clip_gradients(clip, grads, masks)
            grad_norm = grad_norm if total is None else total
        if rule.prepare is not None and grads:  # a cross-tensor pass (Lamb's global clip)
            grads, leaf_norms = rule.prepare(grads, masks, hs, leaf_norms)
        picked: dict = {}  # one slice per (group, dtype), shared by its leaves

        def pick(pair, i, hdt):
            key = (id(pair[0]), int(pair[1][i]), hdt)
            if key not in picked:
                picked[key] = pair[0][pair[1][i]].astype(hdt)
            return picked[key]

        out_u, out_step, out_slots = [], [], []
        for i, (g, p, t, s, h, mask) in enumerate(zip(grads, ps, steps, slots, hs, masks)):
            if leaf_norms[i] is not None:
                h = dict(h, grad_norm=leaf_norms[i].astype(jnp.promote_types(g.dtype,
                                                                             jnp.float32)))
            # scalars (lr, momentum, step) in at least float32: a float16 step count is
            # inexact past 2048 and a small lr underflows; results keep the stored dtypes
            hdt = jnp.promote_types(p.dtype, jnp.float32)
            h = dict(h, lr=pick(lrs, i, hdt))
            if moms[0] is not None:
                m = pick(moms, i, hdt)
                h[mkey] = (m, h["betas"][1]) if mkey == "betas" else m
            if wds[0] is not None:
                h["weight_decay"] = pick(wds, i, hdt)
            if t is None and rule.reads_step(h):
                raise ValueError(f"{rule.name}: the state keeps no step count for "
                                 f"{leaf_names(updates)[i]!r} but its hyperparameters now "
                                 "need one (e.g. a dampening that was 0 at init is traced "
                                 "now); run init with the hyperparameters of the update")
            t_new = None if t is None else t + 1
            new_p, new_s = rule.step(g, p, s, h, None if t is None else t_new.astype(hdt))
            new_p = new_p.astype(p.dtype)
            new_s = jax.tree.map(lambda n, o: n.astype(o.dtype), new_s, s)
            if mask is not None:
                new_p = jnp.where(mask, new_p, p)
                new_s = jax.tree.map(functools.partial(jnp.where, mask), new_s, s)
                if t is not None and not rule.group_step:
                    t_new = jnp.where(mask, t_new, t)
            out_u.append(new_p - p)
            out_step.append(t_new)
            out_slots.append(new_s)
        unflat = lambda xs: jax.tree.unflatten(treedef, xs)
        new_state = TorchOptimizerState(
            count=state.count + 1, step=unflat(out_step), slots=unflat(out_slots),
            lr=per_leaf_vector(lrs), momentum=per_leaf_vector(moms), grad_norm=grad_norm,
            weight_decay=per_leaf_vector(wds))
        return boxed_like(out_u, updates), new_state

    return optax.GradientTransformationExtraArgs(init, update)


def check_update_inputs(name: str, updates, state: TorchOptimizerState, params) -> None:
    """The params against the tree ``init`` saw, the gradients against the params (tree,
    shapes, dtypes): one-line ConfigErrors at trace time instead of JAX's "Dict key
    mismatch" or a silent broadcast."""
    expected = params_structure(state)
    if params is None:
        check_structure(updates, expected, f"{name}.update: the gradients (updates)",
                        "the params given to init")
        return
    check_structure(params, expected, f"{name}.update: the params",
                    "the params given to init")
    check_gradients(updates, params, f"{name}.update")


def _dtype():
    return jax.dtypes.canonicalize_dtype(jnp.float64)
