"""MMSelfSup 0.x layer-wise lr decay (``TransformerFinetuneConstructor``) as paramwise rules.

``layer_decay=d`` with ``model_type='vit'`` or ``'swin'`` gives each transformer
layer an ``lr_mult`` of ``d**(depth from the top)``, written as extra
``paramwise_options`` rules (applied after the config's own) so one rule engine
(``regex_rules.py``) resolves everything. Upstream: MMSelfSup 0.x
``TransformerFinetuneConstructor``.
"""

from __future__ import annotations

import re

from ..errors import ConfigError
from .regex_rules import compile_rules


def vit_layer_decay(names, layer_decay: float, paramwise_options: dict) -> dict:
    """MMSelfSup's ViT rule: ``num_layers = len(backbone.layers) + 1``; pos_embed,
    cls_token, patch_embed get ``decay**num_layers``, ``backbone.layers.i`` gets
    ``decay**(num_layers - i - 1)``; everything else keeps the base lr."""
    ids = {int(m.group(1)) for n in names if (m := re.search(r"backbone\.layers\.(\d+)\.", n))}
    if not ids:
        raise ConfigError("optimizer.model_type='vit' needs parameters named "
                          "'backbone.layers.<i>.*' to count the transformer layers")
    num_layers = max(ids) + 2
    scales = [layer_decay ** (num_layers - i) for i in range(num_layers + 1)]
    options = _copy(paramwise_options)
    for key in ("pos_embed", "cls_token", "patch_embed"):
        if isinstance(options.setdefault(key, {}), dict):
            options[key]["lr_mult"] = scales[0]
    for i in range(num_layers - 1):
        options[f"backbone\\.layers\\.{i}\\."] = dict(lr_mult=scales[i + 1])
    return options


def _copy(paramwise_options) -> dict:
    if not isinstance(paramwise_options, dict):
        compile_rules(paramwise_options)  # the error naming it
    return {k: dict(v) if isinstance(v, dict) else v for k, v in paramwise_options.items()}


def _swin_layer(name, num_layers, depths):
    if "mask_token" in name or "patch_embed" in name:
        return 0
    if name.startswith("backbone.stages"):
        parts = name.split(".")
        stage, block = int(parts[2]), parts[4]
        if block in ("reduction", "norm"):
            return sum(depths[: stage + 1])
        return sum(depths[:stage]) + int(block) + 1
    return num_layers - 1


def swin_layer_decay(names, layer_decay: float, paramwise_options: dict) -> dict:
    """MMSelfSup's Swin rule: ``num_layers = sum(depths) + 2``; each parameter's own name
    becomes a rule with ``lr_mult = decay**(num_layers - 1 - layer_id)``."""
    depths = []
    for n in names:
        m = re.match(r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.", n)
        if m:
            stage, block = int(m.group(1)), int(m.group(2))
            depths += [0] * (stage + 1 - len(depths))
            depths[stage] = max(depths[stage], block + 1)
    if not depths:
        raise ConfigError("optimizer.model_type='swin' needs parameters named "
                          "'backbone.stages.<i>.blocks.<j>.*' to find the depths")
    num_layers = sum(depths) + 2
    scales = [layer_decay ** i for i in reversed(range(num_layers))]
    options = _copy(paramwise_options)
    for name in names:
        options[name] = dict(lr_mult=scales[_swin_layer(name, num_layers, depths)])
    return options
