"""``torch_optimizer`` on the flat layout: every tensor's torch step, a few kernels a run.

The params, gradients and every state slot are ``Flat`` buffers of one ``FlatLayout``
(docs/flat-layout.md). The rule's unchanged ``step(g, p, slots, h, t)`` runs once per
*run* (``layout/runs.py``: neighbouring tensors with the same static signature) on the
run's ``[rows, width]`` slice, with

- ``h``: a value shared by the run's tensors as a Python number (static branches stay
  static), else a ``[rows, 1]`` per-row array; ``lr`` / momentum from the schedules,
  gathered per row from the distinct groups' values;
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
    count: jax.Array  # updates applied: the clock when none is handed in
    step: jax.Array | None  # per-tensor int32 step counts, [n] in layout order
    slots: dict  # slot name -> Flat (torch's state names)
    lr: jax.Array  # per-leaf lr at the last call's iteration, leaf order
    momentum: jax.Array | None
    grad_norm: jax.Array | None
    layout: LayoutRef  # static
    LIVE_FIELDS = ("lr", "momentum")


def _number(v) -> bool:
    return isinstance(v, (numbers.Number, np.generic)) and not isinstance(v, bool)


def signature(rule, h, dtype, param_shape=(1,)) -> tuple:
    """What selects code in ``rule.step`` for a tensor: its flags, whether it keeps a step
    count, its slots, which numbers are a static 0, its dtype."""
    zeros = tuple(sorted(k for k, v in h.items() if _number(v) and v == 0))
    slots = _slot_shapes(rule, h, param_shape, dtype)
    shapes = tuple(sorted((k, s.shape == tuple(param_shape)) for k, s in slots.items()))
    return (str(dtype), tuple(bool(h[f]) for f in rule.flags), bool(rule.reads_step(h)),
            shapes, zeros)


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


def _run_value(values, rows: RunRows):
    """The run's tensors' values of one argument: one Python value, or per row."""
    first = values[0]
    if isinstance(first, tuple):
        return tuple(_run_value([v[i] for v in values], rows) for i in range(len(first)))
    if isinstance(first, bool) or all(v is first for v in values):
        return first
    if all(_number(v) for v in values):
        if all(v == first for v in values):
            return first
        return rows.static_rows(values)
    return jnp.stack([jnp.asarray(v) for v in values])[rows.local][:, None]


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
        runs = []
        for run in split_runs(layout, sigs):
            rows = RunRows(layout, run)
            sub = hs[run.t0:run.t1]
            h = {k: _run_value([x[k] for x in sub], rows) for k in sub[0]}
            names = tuple(_slot_shapes(rule, sub[0], (1,), "float32"))
            runs.append((run, rows, h, sigs[run.t0][2], names))
        return hs_leaf, runs, any(rule.reads_step(h) for h in hs)

    cache: dict = {}

    def planned():
        if "plan" not in cache:
            cache["plan"] = plan()
        return cache["plan"]

    def vectors(hs_leaf, it):
        lrs, moms = scheduled(hs_leaf, treedef, it)
        leaf = lambda pair: None if pair[0] is None else jnp.take(pair[0], pair[1])
        return lrs, moms, leaf(lrs), leaf(moms)

    def init(params):
        if not is_flat(params):
            params = layout.flatten(params)
        _check(params, "init")
        hs_leaf, runs, keeps_step = planned()
        _, _, lr, mom = vectors(hs_leaf, jnp.zeros((), jnp.int32))
        slots: dict = {}
        for run, _, h, _, _ in runs:
            p = params[run.key][run.rows]
            for name, value in rule.init_slots(p, h).items():
                slots.setdefault(name, {})[run] = value
        flat_slots = {name: _assemble(layout, lambda run, key, s=pieces: s.get(run),
                                      lambda key: jnp.zeros_like(params[key]), runs)
                      for name, pieces in slots.items()}
        return FlatOptimizerState(
            jnp.zeros((), jnp.int32),
            jnp.zeros((layout.num_tensors,), jnp.int32) if keeps_step else None,
            flat_slots, lr, mom, None if clip is None else jnp.zeros((), jnp.float32),
            LayoutRef(layout))

    def update(updates, state, params=None, *, iteration=None, grad_mask=None,
               hparams_only=False, **extra):
        del extra
        it = state.count if iteration is None else iteration
        hs_leaf, runs, _ = planned()
        lrs, moms, lr_leaf, mom_leaf = vectors(hs_leaf, it)
        if hparams_only:
            return updates, state._replace(lr=lr_leaf, momentum=mom_leaf)
        if params is None:
            raise ValueError(f"{rule.name} needs the params: call update(grads, state, params)")
        _check(updates, "update (gradients)")
        _check(params, "update (params)")
        mask = _mask_vector(layout, grad_mask)
        grads, grad_norm, norms = updates, state.grad_norm, None
        if clip is not None:
            max_norm, ord_ = clip
            per = layout.norms(grads, ord_)
            per = per if mask is None else jnp.where(mask, per, jnp.zeros((), per.dtype))
            total = segments.norm_of(per, ord_)
            coef = jnp.minimum(max_norm / (total + 1e-6), 1.0)
            grads = jax.tree.map(lambda g: g * coef.astype(g.dtype), grads)
            grad_norm = total.astype(jnp.float32)
            if ord_ == 2.0:
                norms = per * coef
        if rule.prepare is not None:
            if rule.prepare is not lamb.lamb_global_clip:
                raise ConfigError(f"layout='flat': {rule.name}'s cross-tensor pass (prepare) "
                                  "has no flat form; use layout='per_tensor'")
            grads, norms = _lamb_clip(layout, grads, mask, hs_leaf[0], norms)
        idx = {"lr": np.asarray(lrs[1])[order]}
        if moms[0] is not None:
            idx["m"] = np.asarray(moms[1])[order]
        steps = state.step
        new_steps = None if steps is None else steps + 1
        out_p, out_s = {}, {name: {} for name in state.slots}
        for run, rows, h_run, reads, names in runs:
            key, sl = run.key, run.rows
            g, p = grads[key][sl], params[key][sl]
            hdt = jnp.promote_types(p.dtype, jnp.float32)
            h = dict(h_run)
            h["lr"] = jnp.take(lrs[0].astype(hdt), idx["lr"][rows.local + run.t0])[:, None]
            if moms[0] is not None:
                m = jnp.take(moms[0].astype(hdt), idx["m"][rows.local + run.t0])[:, None]
                h[mkey] = (m, h["betas"][1]) if mkey == "betas" else m
            if norms is not None:
                h["grad_norm"] = rows.rows_of(norms).astype(jnp.promote_types(g.dtype,
                                                                              jnp.float32))
            h[TENSOR_NORM] = rows.norm
            h = {k: (jnp.asarray(v, hdt) if isinstance(v, np.ndarray) else
                     tuple(jnp.asarray(x, hdt) if isinstance(x, np.ndarray) else x for x in v)
                     if isinstance(v, tuple) else v) for k, v in h.items()}
            s = {name: state.slots[name][key][sl] for name in names}
            t = None if not reads else rows.rows_of(new_steps).astype(hdt)
            new_p, new_s = rule.step(g, p, s, h, t)
            new_p = new_p.astype(p.dtype)
            new_s = {k: v.astype(s[k].dtype) for k, v in new_s.items()}
            if mask is not None:
                keep = rows.rows_of(mask)
                new_p = jnp.where(keep, new_p, p)
                new_s = {k: jnp.where(keep, v, s[k]) for k, v in new_s.items()}
            out_p[run] = new_p
            for name, v in new_s.items():
                out_s[name][run] = v
        if new_steps is not None and mask is not None and not rule.group_step:
            new_steps = jnp.where(mask, new_steps, steps)
        new_params = _assemble(layout, lambda run, key: out_p[run], lambda key: params[key],
                               runs)
        upd = jax.tree.map(lambda n, o: n - o, new_params, params)
        slots = {name: _assemble(layout, lambda run, key, d=d: d.get(run),
                                 lambda key, name=name: state.slots[name][key], runs)
                 for name, d in out_s.items()}
        return upd, FlatOptimizerState(state.count + 1, new_steps, slots, lr_leaf, mom_leaf,
                                       grad_norm, state.layout)

    def _check(x, what):
        if not is_flat(x) or x.layout != layout:
            got = "a Flat of another layout" if is_flat(x) else type(x).__name__
            raise ConfigError(f"layout='flat' {what}: expected a Flat of the optimizer's "
                              f"layout (layout.flatten(tree)), got {got}")

    return optax.GradientTransformationExtraArgs(init, update)


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


def _assemble(layout, piece, rest, runs) -> Flat:
    """One buffer per key from each run's piece (``piece(run, key)``, None: keep
    ``rest(key)``'s rows) and ``rest(key)``'s rows where no run is."""
    buffers = []
    for key in layout.keys:
        parts, at = [], 0
        whole = None
        for run, *_ in runs:
            if run.key != key:
                continue
            value = piece(run, key)
            if value is None or run.r0 > at:
                whole = rest(key) if whole is None else whole
            if run.r0 > at:
                parts.append(whole[at:run.r0])
            parts.append(whole[run.rows] if value is None else value)
            at = run.r1
        if at < layout.buffer_rows[key]:
            whole = rest(key) if whole is None else whole
            parts.append(whole[at:])
        buffers.append(parts[0] if len(parts) == 1 else jnp.concatenate(parts))
    return Flat(layout, tuple(buffers))


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
    norm = jnp.sqrt(total)
    limit = jnp.asarray(h["max_grad_norm"]).astype(jnp.float32)
    divisor = jnp.where(norm > limit, norm / limit, jnp.float32(1))
    wide = lambda d: jnp.promote_types(d, jnp.float32)
    grads = jax.tree.map(lambda g: (g.astype(wide(g.dtype)) / divisor).astype(g.dtype), grads)
    return grads, None if norms is None else norms / divisor
