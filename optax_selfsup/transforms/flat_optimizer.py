"""``torch_optimizer`` on the flat layout: every tensor's torch step, a few kernels a run.

The params, gradients and every state slot are ``Flat`` buffers of one ``FlatLayout``
(docs/flat-layout.md). The rule's unchanged ``step(g, p, slots, h, t)`` runs over the
whole ``[rows, width]`` buffer once per *run* (``layout/runs.py``: neighbouring tensors
with the same static signature; one run for the built-in recipes, else the runs are
merged per row by a select), with

- ``h``: a value shared by the run's tensors as a Python number (static branches stay
  static), else a ``[rows, 1]`` per-row array; ``lr`` / momentum from the schedules,
  gathered per row from the distinct groups' values; ``Rule.row_flags`` per row;
- ``h[TENSOR_NORM]``: per-tensor 2-norms broadcast per row (LARS ``||p||``, ``||g||``,
  Lamb ``||p||``, ``||u||``): a row reduction and a sorted segment sum;
- ``t``: per-tensor step counts (one int32 ``[n]`` vector in layout order) per row.

So for tensor ``T`` every element gets exactly its per-tensor update, e.g. LARS
``p_T -= m b_T + lr * local_T * (g_T + wd_T p_T)`` with
``local_T = eta ||p_T|| / (||g_T|| + wd_T ||p_T|| + eps)``. The clip
(``clip_grad_norm_``: ``total = ||(||g_T||_q)_T||_q``, ``g *= min(max_norm / (total +
1e-6), 1)``), Lamb's global clip and ``grad_mask`` (a ``[n]`` bool vector in layout
order: masked tensors keep their value and state) are per-tensor vectors too.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import ConfigError
from ..layout import Flat, is_flat, segments
from ..layout.runs import RunRows, split_runs
from . import adam_family, lamb, sgd_family
from .clip import norm_clip_coefficient, norm_dtype
from .grad_clip import raise_nonfinite
from .in_place import with_in_place
from .rule import TENSOR_NORM

_BUILT_IN_STEPS = {r.step for r in sgd_family.RULES + adam_family.RULES + lamb.RULES}


class LayoutRef:
    """A childless pytree node holding the layout (static data) in a state."""

    __slots__ = ("layout",)

    def __init__(self, layout):
        self.layout = layout

    def __repr__(self):
        return f"LayoutRef({self.layout!r})"


jax.tree_util.register_pytree_node(LayoutRef, lambda r: ((), r.layout),
                                   lambda layout, _: LayoutRef(layout))


class FlatOptimizerState(NamedTuple):
    """State of ``torch_optimizer(..., layout=)``: ``TorchOptimizerState``'s fields on the
    flat layout (the step counts a ``[n]`` vector in layout order, each slot one ``Flat``),
    and the layout itself (static)."""

    count: jax.Array  # updates applied: the clock when none is handed in
    step: jax.Array | None  # per-tensor int32 step counts, [n] in layout order
    slots: dict  # slot name -> Flat (torch's state names)
    lr: jax.Array  # per-leaf lr at the last call's iteration, leaf order
    momentum: jax.Array | None
    grad_norm: jax.Array | None  # with a norm clip: the last update's pre-clip norm
    layout: LayoutRef  # static
    # per-leaf weight decay at the last call's iteration when a schedule moves it
    weight_decay: jax.Array | None = None
    LIVE_FIELDS = ("lr", "momentum", "weight_decay")


def _number(v) -> bool:
    return isinstance(v, (numbers.Number, np.generic)) and not isinstance(v, bool)


def signature(rule, h, dtype, param_shape=(1,)) -> tuple:
    """What selects code in ``rule.step`` for a tensor: its flags (but ``row_flags``),
    whether it keeps a step count, its slots, its dtype. A number that is a static 0 in
    one tensor and not in another (a weight decay) is a per-row value: the built-in rules
    skip ``+ 0 * p`` / ``* (1 - lr * 0)`` on a static 0 only to save work, the result is
    the same."""
    slots = _slot_shapes(rule, h, param_shape, dtype)
    shapes = tuple(sorted((k, s.shape == tuple(param_shape)) for k, s in slots.items()))
    return (str(dtype), tuple(bool(h[f]) for f in rule.flags if f not in rule.row_flags),
            bool(rule.reads_step(h)), shapes)


def signature_groups(rule, hs, dtypes) -> list[int]:
    """Per leaf, the index of its signature (first-seen order): ``FlatLayout``'s groups."""
    sigs = [signature(rule, h, d) for h, d in zip(hs, dtypes)]
    index: dict = {}
    return [index.setdefault(s, len(index)) for s in sigs]


def check_rule(rule) -> None:
    if rule.step not in _BUILT_IN_STEPS and not rule.elementwise:
        raise ConfigError(
            f"layout='flat': the rule {rule.name!r} does not declare elementwise=True. A rule "
            "runs on the flat layout only if its step reads nothing across a tensor except "
            "through oss.tensor_norm(x, h) (e.g. no jnp.linalg.norm); declare it with "
            "Rule(..., elementwise=True), or use layout='per_tensor'")


def _run_value(values, everyone, rows: RunRows):
    """One argument of a run's tensors (``values``): one Python value when they share it,
    else per row over the whole buffer (``everyone``: the buffer's tensors' values; rows
    of other runs are selected away)."""
    first = values[0]
    if isinstance(first, tuple):
        return tuple(_run_value([v[i] for v in values], [v[i] for v in everyone], rows)
                     for i in range(len(first)))
    if isinstance(first, (bool, np.bool_)):  # a flag: static, or per row (``row_flags``)
        if all(v == first for v in values):
            return bool(first)
        return np.asarray(everyone, bool)[rows.local][:, None]
    if all(v is first for v in values):
        return first
    if all(_number(v) for v in values) and all(v == first for v in values):
        return first
    if all(_number(v) for v in everyone):
        return rows.static_rows(everyone)
    return jnp.stack([jnp.asarray(v) for v in everyone])[rows.local][:, None]


def _rows_array(v, dtype):
    """A per-row NumPy constant as an array: numbers in ``dtype``, flags as bools."""
    if not isinstance(v, np.ndarray):
        return v
    return jnp.asarray(v) if v.dtype == bool else jnp.asarray(v, dtype)


def _select(run_id, values, default):
    """Per row: ``values[j]`` on the rows of run ``j`` (None: ``default``), ``default``
    elsewhere (trailing padding rows)."""
    out = default
    for j, v in enumerate(values):
        if v is not None:
            out = jnp.where(run_id == j, v, out)
    return out


def flat_transformation(rule, layout, leaf_hparams, scheduled, clip, mkey):
    """The flat twin of ``torch_optimizer``'s transformation (same closures for the
    per-leaf hyperparameters and the schedules)."""
    check_rule(rule)
    treedef = layout.treedef
    order = np.asarray(layout.order)

    def plan():
        hs_leaf = leaf_hparams(treedef)
        hs = [hs_leaf[i] for i in order]
        for i, h in enumerate(hs):
            slots = _slot_shapes(rule, h, (1,), layout.dtypes[i])
            bad = [k for k, s in slots.items() if s.shape != (1,)]
            if bad:
                raise ConfigError(f"layout='flat': {rule.name} keeps the per-tensor scalar "
                                  f"state {bad} (not shaped like the parameter); use "
                                  "layout='per_tensor' for it")
        sigs = [signature(rule, h, d) for h, d in zip(hs, layout.dtypes)]
        buffers = {}  # key -> (whole-buffer rows, run id per row, [(h, reads, slot names)])
        for key in layout.keys:
            start, stop = layout.tensors[key]
            rows = RunRows.whole(layout, key)
            run_id = np.full((layout.buffer_rows[key], 1), -1, np.int32)
            everyone = hs[start:stop]
            runs = []
            for run in split_runs(layout, sigs):
                if run.key != key:
                    continue
                run_id[run.r0:run.r1] = len(runs)
                sub = hs[run.t0:run.t1]
                h = {k: _run_value([x[k] for x in sub], [x[k] for x in everyone], rows)
                     for k in sub[0]}
                names = tuple(_slot_shapes(rule, sub[0], (1,), "float32"))
                runs.append((h, sigs[run.t0][2], names))
            single = len(runs) == 1 and bool(np.all(run_id == 0))
            buffers[key] = (rows, None if single else run_id, runs)
        return hs_leaf, buffers, any(rule.reads_step(h) for h in hs)

    cache: dict = {}

    def planned():
        if "plan" not in cache:
            cache["plan"] = plan()
        return cache["plan"]

    def vectors(hs_leaf, it):
        """The schedules' (distinct values, each leaf's index) for lr, momentum and weight
        decay (None pairs when nothing moves it), and the per-leaf vectors of the state."""
        lrs, moms, wds = scheduled(hs_leaf, treedef, it)
        leaf = lambda pair: None if pair[0] is None else jnp.take(pair[0], pair[1])
        return (lrs, moms, wds), (leaf(lrs), leaf(moms), leaf(wds))

    def init(params):
        if not is_flat(params):
            params = layout.flatten(params)
        _check(params, "init")
        hs_leaf, buffers, keeps_step = planned()
        _, (lr, mom, wd) = vectors(hs_leaf, jnp.zeros((), jnp.int32))
        names = list(dict.fromkeys(n for _, _, runs in buffers.values()
                                   for _, _, ns in runs for n in ns))
        flat_slots = {}
        for name in names:
            out = {}
            for key, (_, run_id, runs) in buffers.items():
                p = params[key]
                made = [rule.init_slots(p, h)[name] if name in ns else None
                        for h, _, ns in runs]
                out[key] = (made[0] if run_id is None else
                            _select(run_id, made, jnp.zeros_like(p)))
            flat_slots[name] = Flat(layout, out)
        return FlatOptimizerState(
            jnp.zeros((), jnp.int32),
            jnp.zeros((layout.num_tensors,), jnp.int32) if keeps_step else None,
            flat_slots, lr, mom,
            (jnp.zeros((), norm_dtype(jax.tree.leaves(params)))
             if clip is not None and clip.kind == "norm" else None),
            LayoutRef(layout), wd)

    def update(updates, state, params=None, *, iteration=None, grad_mask=None,
               hparams_only=False, **extra):
        if hparams_only:
            it = state.count if iteration is None else iteration
            _, (lr_leaf, mom_leaf, wd_leaf) = vectors(planned()[0], it)
            return updates, state._replace(lr=lr_leaf, momentum=mom_leaf, weight_decay=wd_leaf)
        new_params, state = apply(updates, state, params, iteration=iteration,
                                  grad_mask=grad_mask, **extra)
        return jax.tree.map(lambda n, o: n - o, new_params, params), state

    def apply(updates, state, params=None, *, iteration=None, grad_mask=None, **extra):
        """The step writing the new params (``oss.update_and_apply``: one pass less)."""
        del extra
        it = state.count if iteration is None else iteration
        hs_leaf, buffers, _ = planned()
        (lrs, moms, wds), (lr_leaf, mom_leaf, wd_leaf) = vectors(hs_leaf, it)
        if params is None:
            raise ValueError(f"{rule.name} needs the params: call update(grads, state, params)")
        _check(updates, "update (gradients)")
        _check(params, "update (params)")
        mask = _mask_vector(layout, grad_mask)
        grads, grad_norm, norms = _clip(clip, layout, updates, mask, state.grad_norm)
        if rule.prepare is not None:
            if rule.prepare is not lamb.lamb_global_clip:
                raise ConfigError(f"layout='flat': {rule.name}'s cross-tensor pass (prepare) "
                                  "has no flat form; use layout='per_tensor'")
            grads, norms = _lamb_clip(layout, grads, mask, hs_leaf[0], norms)
        lr_index = np.asarray(lrs[1])[order]
        m_index = None if moms[0] is None else np.asarray(moms[1])[order]
        w_index = None if wds[0] is None else np.asarray(wds[1])[order]
        steps = state.step
        new_steps = None if steps is None else steps + 1
        new_params, new_slots = {}, {name: {} for name in state.slots}
        for key, (rows, run_id, runs) in buffers.items():
            g, p = grads[key], params[key]
            hdt = jnp.promote_types(p.dtype, jnp.float32)
            at = rows.local + rows.run.t0  # each row's tensor, layout order
            common = {"lr": jnp.take(lrs[0].astype(hdt), lr_index[at])[:, None],
                      TENSOR_NORM: rows.norm}
            if m_index is not None:
                common["m"] = jnp.take(moms[0].astype(hdt), m_index[at])[:, None]
            if w_index is not None:  # a scheduled weight decay: per row, as the lr
                common["weight_decay"] = jnp.take(wds[0].astype(hdt), w_index[at])[:, None]
            if norms is not None:
                common["grad_norm"] = rows.rows_of(norms).astype(
                    jnp.promote_types(g.dtype, jnp.float32))
            t_rows = None if new_steps is None else rows.rows_of(new_steps).astype(hdt)
            outs = []
            for h_run, reads, names in runs:
                h = {k: tuple(_rows_array(x, hdt) for x in v) if isinstance(v, tuple)
                     else _rows_array(v, hdt) for k, v in h_run.items()}
                h.update({k: v for k, v in common.items() if k != "m"})
                if "m" in common:
                    h[mkey] = (common["m"], h["betas"][1]) if mkey == "betas" else common["m"]
                s_in = {name: state.slots[name][key] for name in names}
                new_p, new_s = rule.step(g, p, s_in, h, t_rows if reads else None)
                outs.append((new_p.astype(p.dtype),
                             {k: v.astype(s_in[k].dtype) for k, v in new_s.items()}))
            if run_id is None:
                new_p, new_s = outs[0][0], dict(outs[0][1])
            else:
                new_p = _select(run_id, [o[0] for o in outs], p)
                new_s = {name: _select(run_id, [o[1].get(name) for o in outs],
                                       state.slots[name][key]) for name in state.slots}
            if mask is not None:
                keep = rows.rows_of(mask)
                new_p = jnp.where(keep, new_p, p)
                new_s = {k: jnp.where(keep, v, state.slots[k][key]) for k, v in new_s.items()}
            new_params[key] = new_p
            for name in state.slots:
                new_slots[name][key] = new_s.get(name, state.slots[name][key])
        if new_steps is not None and mask is not None and not rule.group_step:
            new_steps = jnp.where(mask, new_steps, steps)
        slots = {name: Flat(layout, d) for name, d in new_slots.items()}
        return Flat(layout, new_params), FlatOptimizerState(
            state.count + 1, new_steps, slots, lr_leaf, mom_leaf, grad_norm, state.layout,
            wd_leaf)

    def _check(x, what):
        if not is_flat(x) or x.layout != layout:
            got = "a Flat of another layout" if is_flat(x) else type(x).__name__
            raise ConfigError(f"layout='flat' {what}: expected a Flat of the optimizer's "
                              f"layout (layout.flatten(tree)), got {got}")

    return with_in_place(optax.GradientTransformationExtraArgs(init, update), apply)


_SLOT_CACHE: dict = {}


def _slot_shapes(rule, h, shape, dtype) -> dict:
    """``rule.init_slots``'s shapes for a parameter of ``shape`` (cached per distinct
    hyperparameters: a tree of 10k tensors has a few)."""
    try:
        key = (rule.init_slots, tuple(shape), str(dtype), tuple(sorted(h.items())))
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _SLOT_CACHE:
        return _SLOT_CACHE[key]
    out = jax.eval_shape(lambda: rule.init_slots(jnp.zeros(shape, dtype), h))
    if key is not None:
        if len(_SLOT_CACHE) > 4096:
            _SLOT_CACHE.clear()
        _SLOT_CACHE[key] = out
    return out


def _clip(clip, layout, grads, mask, grad_norm):
    """``GradClip`` on the flat buffers: ``(grads, pre-clip total norm, per-tensor 2-norms
    of the clipped gradients or None)``. By value: every element clamped (the padding
    is 0 and stays 0); by norm: per-tensor norms (masked tensors count 0), their norm,
    one coefficient for every buffer."""
    if clip is None:
        return grads, grad_norm, None
    if clip.kind == "value":
        c = clip.clip_value
        return jax.tree.map(lambda g: jnp.clip(g, -c, c), grads), grad_norm, None
    ord_ = clip.norm_type
    per = layout.norms(grads, ord_)
    per = per if mask is None else jnp.where(mask, per, jnp.zeros((), per.dtype))
    total = segments.norm_of(per, ord_)
    if clip.error_if_nonfinite:
        jax.debug.callback(raise_nonfinite, total, ord_)
    coef = norm_clip_coefficient(total, clip.max_norm)
    grads = jax.tree.map(lambda g: g * coef.astype(g.dtype), grads)
    return grads, total.astype(grad_norm.dtype), (per * coef if ord_ == 2.0 else None)


def _mask_vector(layout, grad_mask):
    """``grad_mask`` (None, a ``[n]`` vector in layout order or a per-leaf pytree)."""
    if grad_mask is None:
        return None
    if hasattr(grad_mask, "shape") and np.shape(grad_mask) == (layout.num_tensors,):
        return jnp.asarray(grad_mask, bool)
    return layout.per_tensor(grad_mask, bool)


def _lamb_clip(layout, grads, mask, h, norms):
    """Lamb's global clip (``lamb.lamb_global_clip``) on the flat layout: per-tensor sums
    of squares, rounded as upstream, summed in float32 tensor after tensor in leaf order."""
    if norms is None:  # torch: grad.pow(2).sum(), in the gradient's dtype
        sq = layout.sum_squares(grads)
        sq = jnp.concatenate([sq[a:b].astype(k).astype(jnp.float32)
                              for k, (a, b) in layout.tensors.items()])
    else:
        sq = jnp.concatenate([(norms[a:b] * norms[a:b]).astype(k).astype(jnp.float32)
                              for k, (a, b) in layout.tensors.items()])
    if mask is not None:
        sq = jnp.where(mask, sq, jnp.float32(0))
    in_leaf_order = sq[jnp.asarray(layout.position)]
    total, _ = jax.lax.scan(lambda c, x: (c + x, None), jnp.float32(0), in_leaf_order)
    divisor = lamb.global_clip_divisor(total, h["max_grad_norm"])
    grads = jax.tree.map(lambda g: lamb.divided(g, divisor), grads)
    return grads, None if norms is None else norms / divisor
