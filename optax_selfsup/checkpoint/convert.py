"""An optimizer state moved between the per-tensor and the flat layout.

``convert_state(state, template)`` returns ``state`` (of ``build_optimizer(cfg, params)``
or of ``layout='flat'``, e.g. restored from a checkpoint or from a torch checkpoint by
``from_torch_checkpoint``) in the layout of ``template`` (``tx.init(params)`` or
``jax.eval_shape(tx.init, params)`` of the transformation that continues the run), with
the same values:

- per tensor -> flat: each slot's per-leaf tensors -> one ``Flat`` (rows of tensors
  without that slot 0), the per-leaf step counts -> the ``[n]`` vector (layout order;
  0 where the per-tensor state keeps none), every params-shaped tree elsewhere in the
  state (the accumulation buffer) -> its ``Flat``;
- flat -> per tensor: the reverse, keeping a step count exactly where the template does.

The lr / momentum vectors (leaf order), the clock, the loss scale and the clip norm are
the same in both layouts. A state whose transformation differs from the template's
(another optimizer, accumulation, ...) is refused afterwards by ``check_compatible``
naming the difference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..layout import Flat, FlatLayout, is_flat
from ..pytrees import unbox
from ..transforms.flat_optimizer import FlatOptimizerState, LayoutRef
from ..transforms.torch_optimizer import TorchOptimizerState, params_structure


def _find(tree, cls):
    is_state = lambda x: isinstance(x, cls)
    return [s for s in jax.tree.leaves(tree, is_leaf=is_state) if is_state(s)]


def to_flat(opt: TorchOptimizerState, layout: FlatLayout) -> FlatOptimizerState:
    """One per-tensor optimizer state -> the flat one of ``layout``."""
    treedef = params_structure(opt)
    steps = treedef.flatten_up_to(opt.step)
    slots = treedef.flatten_up_to(opt.slots)
    names = list(dict.fromkeys(k for s in slots for k in s))
    flat_slots = {}
    for name in names:
        tensors = [s[name] if name in s else jnp.zeros(layout.shapes[layout.position[i]],
                                                       layout.dtypes[layout.position[i]])
                   for i, s in enumerate(slots)]
        flat_slots[name] = layout.flatten(jax.tree.unflatten(layout.treedef, tensors))
    if all(t is None for t in steps):
        step = None
    else:
        step = jnp.stack([jnp.asarray(0 if steps[i] is None else steps[i], jnp.int32)
                          for i in layout.order])
    return FlatOptimizerState(opt.count, step, flat_slots, opt.lr, opt.momentum, opt.grad_norm,
                              LayoutRef(layout), opt.weight_decay)


def to_per_tensor(opt: FlatOptimizerState, like: TorchOptimizerState) -> TorchOptimizerState:
    """One flat optimizer state -> the per-tensor one shaped like ``like``."""
    layout = opt.layout.layout
    treedef = params_structure(like)
    keeps = [t is not None for t in treedef.flatten_up_to(like.step)]
    like_slots = treedef.flatten_up_to(like.slots)
    slots = {name: treedef.flatten_up_to(layout.unflatten(f)) for name, f in opt.slots.items()}
    out_slots = [{k: slots[k][i] for k in s} for i, s in enumerate(like_slots)]
    pos = np.asarray(layout.position)
    steps = [opt.step[pos[i]] if keep else None for i, keep in enumerate(keeps)]
    return TorchOptimizerState(opt.count, jax.tree.unflatten(treedef, steps),
                               jax.tree.unflatten(treedef, out_slots), opt.lr, opt.momentum,
                               opt.grad_norm, opt.weight_decay)


def convert_state(state, template):
    """``state`` in ``template``'s layout (see the module doc); unchanged when both are
    already in the same layout."""
    state, template = unbox(state), unbox(template)
    flat_t = _find(template, FlatOptimizerState)
    per_t = _find(template, TorchOptimizerState)
    if flat_t and _find(state, TorchOptimizerState):
        layout = flat_t[0].layout.layout
        kinds = (TorchOptimizerState,)
        convert = lambda x: to_flat(x, layout) if isinstance(x, kinds) else layout.flatten(x)
        is_params = _params_like(layout.treedef)
        pick = lambda x: isinstance(x, kinds) or is_params(x)
        return jax.tree.map(lambda x: convert(x) if pick(x) else x, state, is_leaf=pick)
    if per_t and _find(state, FlatOptimizerState):
        like = per_t[0]
        pick = lambda x: isinstance(x, FlatOptimizerState) or is_flat(x)

        def convert(x):
            if isinstance(x, FlatOptimizerState):
                return to_per_tensor(x, like)
            return x.layout.unflatten(x) if isinstance(x, Flat) else x

        return jax.tree.map(lambda x: convert(x) if pick(x) else x, state, is_leaf=pick)
    return state


def _params_like(treedef):
    def is_params(x):
        if isinstance(x, (TorchOptimizerState, FlatOptimizerState)) or x is None:
            return False
        try:
            return jax.tree.structure(x) == treedef
        except Exception:  # noqa: BLE001 - any node that is not the params' structure
            return False
    return is_params
