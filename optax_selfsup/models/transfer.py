"""Weights between a torch ``state_dict`` and Flax Linen variables.

Names: a Flax leaf ``params.<path>`` has the torch name ``name_map(params.<path>)``
(``optax_selfsup.names``; ``'default'`` maps ``kernel``/``scale`` to ``weight``,
``layer1_0`` to ``layer1.0`` ...). A ``batch_stats.<path>.mean`` / ``.var`` leaf
is the BatchNorm's ``running_mean`` / ``running_var`` buffer of the same module.

Layouts: ``optax_selfsup.checkpoint.tensor_layouts`` (``oss.torch_to_flax_layout`` /
``oss.flax_to_torch_layout``): a ``kernel`` of rank 2 is a linear layer, torch
``(out, in)`` <-> Flax ``(in, out)``; of rank 3 to 5 a convolution, torch
``(O, I, *spatial)`` <-> Flax ``(*spatial, I, O)``; everything else (BatchNorm /
LayerNorm ``scale``, biases, tokens, embeddings) keeps its shape.

Torch's ``num_batches_tracked`` counters have no Flax counterpart: they are
ignored when reading and written as ``0`` only if asked. Values are converted
with ``numpy.asarray`` (torch tensors are detached and moved to the CPU first);
their dtype is kept, so a float64 state dict gives float64 variables (under
``jax_enable_x64``).
"""

from __future__ import annotations

import difflib

import jax
import jax.numpy as jnp
import numpy as np

from ..checkpoint.tensor_layouts import flax_to_torch_layout, torch_to_flax_layout
from ..names import leaf_names, make_name_map

_STATS = {"mean": "running_mean", "var": "running_var"}
TORCH_ONLY_BUFFERS = ("num_batches_tracked",)


def _torch_name(flax_name: str, translate) -> str:
    collection, _, rest = flax_name.partition(".")
    if collection == "params":
        return translate(flax_name)
    if collection == "batch_stats":
        module, _, stat = rest.rpartition(".")
        if stat not in _STATS:
            raise ValueError(f"{flax_name}: batch_stats leaves are 'mean' or 'var', got {stat!r}")
        return translate("params." + module + ".x").rsplit(".", 1)[0] + "." + _STATS[stat]
    raise ValueError(f"{flax_name}: only the 'params' and 'batch_stats' collections have torch "
                     f"counterparts, got {collection!r}")


def torch_name_table(template_variables, name_map="default") -> dict[str, str]:
    """Flax leaf name (``params.backbone.conv1.kernel``) -> torch name, in leaf order."""
    translate = make_name_map(name_map)
    return {n: _torch_name(n, translate) for n in leaf_names(template_variables)}


def flax_variables_from_torch(state_dict, template_variables, name_map="default",
                              strict: bool = True):
    """Flax variables shaped like ``template_variables`` holding the state dict's values.

    The template's leaves may be arrays or ``jax.ShapeDtypeStruct`` (``jax.eval_shape``).

    Every template leaf must find its torch name in ``state_dict`` with the matching
    (layout-converted) shape, else ``KeyError`` / ``ValueError`` names it. With
    ``strict``, state-dict entries that no leaf uses (other than
    ``num_batches_tracked``) are an error too.
    """
    table = torch_name_table(template_variables, name_map)
    leaves, treedef = jax.tree.flatten(template_variables)
    out = []
    for (flax_name, torch_name), template in zip(table.items(), leaves):
        if torch_name not in state_dict:
            close = difflib.get_close_matches(torch_name, list(state_dict), n=3)
            raise KeyError(f"{torch_name!r} (for Flax {flax_name!r}) is not in the state dict"
                           + (f"; close names: {close}" if close else ""))
        value = torch_to_flax_layout(flax_name, state_dict[torch_name])
        shape = tuple(getattr(template, "shape", np.shape(template)))
        if value.shape != shape:
            torch_shape = tuple(getattr(state_dict[torch_name], "shape", ()))
            raise ValueError(f"{torch_name!r}: torch shape {torch_shape}"
                             f" gives {value.shape} in Flax layout, but {flax_name!r} has "
                             f"{shape}")
        out.append(jnp.asarray(value))
    if strict:
        used = set(table.values())
        unused = [k for k in state_dict if k not in used
                  and k.rsplit(".", 1)[-1] not in TORCH_ONLY_BUFFERS]
        if unused:
            raise ValueError(f"state dict entries with no Flax counterpart: {unused} "
                             "(pass strict=False to ignore them)")
    return jax.tree.unflatten(treedef, out)


def torch_state_dict_from_flax(variables, name_map="default",
                               num_batches_tracked: bool = False) -> dict[str, np.ndarray]:
    """The inverse: ``{torch name: numpy array in torch layout}`` (load it with
    ``module.load_state_dict({k: torch.from_numpy(v) ...}, strict=...)``)."""
    table = torch_name_table(variables, name_map)
    out = {}
    for (flax_name, torch_name), value in zip(table.items(), jax.tree.leaves(variables)):
        if torch_name in out:
            raise ValueError(f"two Flax leaves map to the torch name {torch_name!r}")
        out[torch_name] = np.array(flax_to_torch_layout(flax_name, np.asarray(value)))
        if num_batches_tracked and torch_name.endswith(".running_mean"):
            out[torch_name[: -len("running_mean")] + "num_batches_tracked"] = np.array(0)
    return out
