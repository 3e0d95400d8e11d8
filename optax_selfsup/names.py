"""Torch-style dotted names for the leaves of a JAX pytree, and Flax -> torch translation.

A leaf's name is its key path joined with '.' (dict keys, attribute names,
sequence indices): ``{'backbone': {'layer1': [{'conv1': {'kernel': ...}}]}}``
gives ``backbone.layer1.0.conv1.kernel``. MMSelfSup's regexes are written for
torch names, so ``DEFAULT_NAME_MAP`` rewrites Flax spellings first:

- a leading ``params.`` (Linen's collection) is dropped;
- ``kernel``, ``scale`` and ``embedding`` leaves become ``weight``;
- Linen's auto-names ``BatchNorm_3`` / ``GroupNorm_0`` / ``LayerNorm_1`` /
  ``Dense_2`` become ``bn3`` / ``gn0`` / ``ln1`` / ``fc2``, so
  ``(bn|gn)(\\d+)?.(weight|bias)`` selects them;
- a Linen list attribute's ``layer1_0`` becomes ``layer1.0`` (torch's ModuleList
  indexing; ``nn.Sequential``'s ``layers_1`` becomes ``layers.1``, where torch
  would say ``1``: MMSelfSup's regexes do not depend on that part).

Numbering: Linen counts auto-named modules from 0 and the default map keeps that
number, which is how MMSelfSup numbers the layers of its necks and heads
(``NonLinearNeck``: ``fc0, bn0, fc1, bn1, ...``): a Linen neck written with
auto-names gets the torch neck's names. Torch's ResNet counts the layers inside a
block (and the stem) from 1 (``conv1, bn1, conv2, bn2, conv3, bn3``);
``flax_resnet_name_map`` adds 1 there, inside the blocks of Flax's example ResNet
only, and translates everything else as the default map does.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable

import jax
import numpy as np

from .errors import ConfigError
from .pytrees import unbox

DEFAULT_NAME_MAP: tuple[tuple[str, str], ...] = (
    (r"^params\.", ""),
    (r"\.(kernel|scale|embedding)$", ".weight"),
    (r"(^|\.)BatchNorm_(\d+)(?=\.)", r"\1bn\2"),
    (r"(^|\.)GroupNorm_(\d+)(?=\.)", r"\1gn\2"),
    (r"(^|\.)LayerNorm_(\d+)(?=\.)", r"\1ln\2"),
    (r"(^|\.)Dense_(\d+)(?=\.)", r"\1fc\2"),
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
        raise ConfigError(f"name_map={name_map!r}: use 'default', None, a callable or a list of "
                          "(regex, replacement) pairs")
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]

    def translate(name: str) -> str:
        for pattern, repl in compiled:
            name = pattern.sub(repl, name)
        return name

    return translate


def torch_names(params, name_map="default") -> list[str]:
    """The torch-style name of every leaf of ``params``, in leaf order: the key path
    joined with dots (``backbone.layer1.0.conv1.weight``), then translated by
    ``name_map`` ('default': Flax's ``kernel``/``scale`` -> ``weight``, ``Dense_j`` ->
    ``fc{j}``; a list of (regex, replacement) pairs; a callable; or None for the bare
    path). These are the names the config's paramwise rules match."""
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


def flax_resnet_name_map(stage_sizes, prefix: str = "backbone.", head: str | None = "head.fc"):
    """A ``name_map`` for the ResNet of Flax's own examples (``examples/imagenet``).

    That model names its stem ``conv_init`` / ``bn_init``, numbers its blocks across
    all stages (``BottleneckResNetBlock_7`` or ``ResNetBlock_7``), auto-names the
    layers inside a block ``Conv_0, BatchNorm_0, Conv_1, ...``, names the shortcut
    ``conv_proj`` / ``norm_proj`` and its classifier ``Dense_0``. The map gives
    torch's (mmcls) ResNet names:

    - ``conv_init`` / ``bn_init`` -> ``{prefix}conv1`` / ``{prefix}bn1``;
    - block ``i`` -> ``{prefix}layer{s}.{b}`` (stage ``s`` from 1, block ``b`` within
      the stage from 0, read off ``stage_sizes``);
    - inside a block, ``Conv_j`` / ``BatchNorm_j`` -> ``conv{j+1}`` / ``bn{j+1}``
      (torch counts a block's layers from 1), ``conv_proj`` / ``norm_proj`` ->
      ``downsample.0`` / ``downsample.1``;
    - a top-level ``Dense_0`` (the classifier of a ResNet that is the whole model) ->
      ``head``; ``head=None`` leaves it to the default map (``fc0``);
    - everything else as ``DEFAULT_NAME_MAP`` (``kernel`` / ``scale`` -> ``weight``, a
      neck's ``Dense_0`` / ``BatchNorm_0`` -> ``fc0`` / ``bn0`` as MMSelfSup's
      ``NonLinearNeck`` names them).

    ``stage_sizes``: blocks per stage (ResNet-18 ``[2, 2, 2, 2]``, ResNet-34 and ResNet-50
    ``[3, 4, 6, 3]``); a block number beyond their sum is an error.
    ``prefix``: put before the stem and block names; the default suits a Flax ResNet
    that is the whole model (``params.conv_init``); pass ``prefix=""`` when it sits
    under a module already named like torch's (``params.backbone.conv_init`` ->
    ``backbone.conv1``); then a top-level ``Dense_0`` is not the ResNet's classifier:
    pass ``head=None`` too. For ResNet-50,
    ``params.BottleneckResNetBlock_7.BatchNorm_1.scale`` -> ``backbone.layer3.0.bn2.weight``,
    so MMSelfSup's regexes select what they select in torch::

        tx = oss.build_optimizer(cfg, params, steps_per_epoch=n,
                                 name_map=oss.flax_resnet_name_map([3, 4, 6, 3]))
    """
    sizes = list(stage_sizes) if np.ndim(stage_sizes) == 1 and not isinstance(
        stage_sizes, (str, bytes)) else []
    if not sizes or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0
                            for n in sizes):
        raise ConfigError(f"flax_resnet_name_map: stage_sizes={stage_sizes!r}: give the number "
                          "of blocks of every stage, a list of positive ints (ResNet-50: "
                          "[3, 4, 6, 3])")
    if not isinstance(prefix, str) or not (head is None or isinstance(head, str)):
        raise ConfigError(f"flax_resnet_name_map: prefix={prefix!r}, head={head!r}: prefix "
                          "is a str ('' or e.g. 'backbone.'), head a str or None")
    sizes = [int(n) for n in sizes]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    block = re.compile(r"^(?:Bottleneck)?ResNetBlock_(\d+)$")
    inner = re.compile(r"^(Conv|BatchNorm)_(\d+)$")
    default = make_name_map("default")

    def translate(name: str) -> str:
        parts = name.split(".")
        if parts and parts[0] == "params":
            parts = parts[1:]
        out = []
        in_block = False
        for i, part in enumerate(parts):
            if part == "conv_init":
                out.append(prefix + "conv1")
            elif part == "bn_init":
                out.append(prefix + "bn1")
            elif part == "Dense_0" and i == 0 and head is not None:
                out.append(head)
            elif m := block.match(part):
                index = int(m.group(1))
                if index >= sum(sizes):
                    raise ConfigError(
                        f"flax_resnet_name_map: {name!r} is block {index} but "
                        f"stage_sizes={sizes} has {sum(sizes)} blocks (0..{sum(sizes) - 1}); "
                        "pass the stage sizes of this ResNet")
                stage = max(s for s in range(len(starts)) if starts[s] <= index)
                out.append(f"{prefix}layer{stage + 1}.{index - starts[stage]}")
                in_block = True
                continue
            elif in_block and (m := inner.match(part)):
                kind = "conv" if m.group(1) == "Conv" else "bn"
                out.append(f"{kind}{int(m.group(2)) + 1}")
            elif in_block and part in ("conv_proj", "norm_proj"):
                out.append("downsample.0" if part == "conv_proj" else "downsample.1")
            else:
                out.append(part)
            in_block = False
        return default(".".join(out))

    return translate
