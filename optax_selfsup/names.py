"""Torch-style dotted names for the leaves of a JAX pytree, and Flax -> torch translation.

A leaf's name is its key path joined with '.' (dict keys, attribute names,
sequence indices): ``{'backbone': {'layer1': [{'conv1': {'kernel': ...}}]}}``
gives ``backbone.layer1.0.conv1.kernel``. MMSelfSup's regexes are written for
torch names, so ``DEFAULT_NAME_MAP`` rewrites Flax spellings first:

- a leading ``params.`` (Linen's collection) is dropped;
- ``kernel``, ``scale`` and ``embedding`` leaves become ``weight``;
- Linen's auto-names ``BatchNorm_3`` / ``GroupNorm_0`` / ``LayerNorm_1`` become
  ``bn3`` / ``gn0`` / ``ln1``, so ``(bn|gn)(\\d+)?.(weight|bias)`` selects them;
- a Linen list attribute's ``layer1_0`` becomes ``layer1.0`` (torch's ModuleList
  indexing; ``nn.Sequential``'s ``layers_1`` becomes ``layers.1``, where torch
  would say ``1``: MMSelfSup's regexes do not depend on that part).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import jax

from .pytrees import unbox

DEFAULT_NAME_MAP: tuple[tuple[str, str], ...] = (
    (r"^params\.", ""),
    (r"\.(kernel|scale|embedding)$", ".weight"),
    (r"(^|\.)BatchNorm_(\d+)(?=\.)", r"\1bn\2"),
    (r"(^|\.)GroupNorm_(\d+)(?=\.)", r"\1gn\2"),
    (r"(^|\.)LayerNorm_(\d+)(?=\.)", r"\1ln\2"),
    (r"_(\d+)(?=\.)", r".\1"),
)


def _key_str(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def leaf_names(params) -> list[str]:
    """The dotted key path of every leaf, in ``jax.tree.leaves`` order (Flax NNX
    ``Variable`` boxes unwrapped first, so no name ends in ``.value``)."""
    paths = jax.tree_util.tree_flatten_with_path(unbox(params))[0]
    return [".".join(_key_str(k) for k in path) for path, _ in paths]


def make_name_map(name_map) -> Callable[[str], str]:
    """``'default'`` | ``None`` (identity) | callable | sequence of (regex, replacement)."""
    if name_map is None:
        return lambda name: name
    if callable(name_map):
        return name_map
    rules = DEFAULT_NAME_MAP if isinstance(name_map, str) and name_map == "default" else name_map
    if isinstance(name_map, str) and name_map != "default":
        raise ValueError(f"name_map={name_map!r}: use 'default', None, a callable or a list of "
                         "(regex, replacement) pairs")
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]

    def translate(name: str) -> str:
        for pattern, repl in compiled:
            name = pattern.sub(repl, name)
        return name

    return translate


def torch_names(params, name_map="default") -> list[str]:
    translate = make_name_map(name_map)
    return [translate(n) for n in leaf_names(params)]


def nest_names(flat: dict) -> dict:
    """``{'a.b.c': x}`` -> ``{'a': {'b': {'c': x}}}``: a torch-style flat mapping (e.g. a
    state_dict) as a nested pytree whose leaf names (``leaf_names``) are the same."""
    tree: dict = {}
    for name, value in flat.items():
        node = tree
        *parents, last = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{name!r}: {part!r} is both a leaf and a prefix")
        node[last] = value
    return tree


def flax_resnet_name_map(stage_sizes, prefix: str = "backbone.", head: str = "head.fc"):
    """A ``name_map`` for the ResNet of Flax's own examples (``examples/imagenet``).

    That model names its stem ``conv_init`` / ``bn_init``, numbers its blocks across
    all stages (``BottleneckResNetBlock_7`` or ``ResNetBlock_7``), names the layers
    inside a block ``Conv_0, BatchNorm_0, Conv_1, ...`` and the shortcut
    ``conv_proj`` / ``norm_proj``, and its classifier ``Dense_0``. This maps them to
    torch's (mmcls) ResNet names, e.g. for ResNet-50 (``stage_sizes=[3, 4, 6, 3]``)
    ``params.BottleneckResNetBlock_7.BatchNorm_1.scale`` ->
    ``backbone.layer3.0.bn2.weight``, so MMSelfSup's regexes select what they select
    in torch::

        tx = oss.build_optimizer(cfg, params, steps_per_epoch=n,
                                 name_map=oss.flax_resnet_name_map([3, 4, 6, 3]))
    """
    starts = [sum(stage_sizes[:i]) for i in range(len(stage_sizes))]
    block = re.compile(r"^(?:Bottleneck)?ResNetBlock_(\d+)$")
    inner = re.compile(r"^(Conv|BatchNorm)_(\d+)$")
    leaf_names_map = {"kernel": "weight", "scale": "weight"}

    def translate(name: str) -> str:
        parts = name.split(".")
        if parts and parts[0] == "params":
            parts = parts[1:]
        out = []
        for i, part in enumerate(parts):
            if part == "conv_init":
                out.append(prefix + "conv1")
            elif part == "bn_init":
                out.append(prefix + "bn1")
            elif part == "Dense_0" and i == 0:
                out.append(head)
            elif m := block.match(part):
                index = int(m.group(1))
                stage = max(s for s in range(len(starts)) if starts[s] <= index)
                out.append(f"{prefix}layer{stage + 1}.{index - starts[stage]}")
            elif m := inner.match(part):
                kind = "conv" if m.group(1) == "Conv" else "bn"
                out.append(f"{kind}{int(m.group(2)) + 1}")
            elif part in ("conv_proj", "norm_proj"):
                out.append("downsample.0" if part == "conv_proj" else "downsample.1")
            elif i == len(parts) - 1:
                out.append(leaf_names_map.get(part, part))
            else:
                out.append(part)
        return ".".join(out)

    return translate
