"""MMSelfSup 0.x optimizer constructors for named torch parameters (reference side).

``DefaultOptimizerConstructor``: one group per parameter, in ``named_parameters``
order, also without ``paramwise_options`` (MMSelfSup 0.x turns a missing dict into
``{}``); each matching regex (``re.search`` on the name, in order) sets its options
(``X_mult`` = optimizer X * value). ``TransformerFinetuneConstructor`` first adds its ViT /
Swin layer-wise ``lr_mult`` rules.
"""

from __future__ import annotations

import copy
import re


def _vit_rules(names, decay, rules):
    layer_ids = set()
    for n in names:
        m = re.search(r"backbone\.layers\.(\d+)\.", n)
        if m:
            layer_ids.add(int(m.group(1)))
    num_layers = len(layer_ids) + 1
    scales = [decay ** (num_layers - i) for i in range(num_layers + 1)]
    for key in ("pos_embed", "cls_token", "patch_embed"):
        if key in rules:
            rules[key].update(dict(lr_mult=scales[0]))
        else:
            rules[key] = dict(lr_mult=scales[0])
    for i in range(num_layers - 1):
        rules[f"backbone\\.layers\\.{i}\\."] = dict(lr_mult=scales[i + 1])


def _swin_rules(names, decay, rules):
    blocks = {}
    for n in names:
        m = re.match(r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.", n)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    depths = [len(blocks.get(i, ())) for i in range(max(blocks) + 1)]
    num_layers = sum(depths) + 2
    scales = list(decay ** i for i in reversed(range(num_layers)))
    for n in names:
        if "mask_token" in n or "patch_embed" in n:
            layer = 0
        elif n.startswith("backbone.stages"):
            parts = n.split(".")
            stage, block = int(parts[2]), parts[4]
            if block in ("reduction", "norm"):
                layer = sum(depths[: stage + 1])
            else:
                layer = sum(depths[:stage]) + int(block) + 1
        else:
            layer = num_layers - 1
        rules[n] = dict(lr_mult=scales[layer])


def param_groups(optimizer_cfg: dict, named_parameters):
    """(optimizer kwargs, torch param groups) as the MMSelfSup constructors make them."""
    cfg = copy.deepcopy(optimizer_cfg)
    cfg.pop("type")
    constructor = cfg.pop("constructor", "DefaultOptimizerConstructor")
    rules = cfg.pop("paramwise_options", None)
    named = list(named_parameters)
    if constructor == "TransformerFinetuneConstructor":
        decay = cfg.pop("layer_decay", 0.0)
        model_type = cfg.pop("model_type", None)
        rules = {} if rules is None else rules
        names = [n for n, _ in named]
        if decay > 0:
            (_vit_rules if model_type == "vit" else _swin_rules)(names, decay, rules)
    rules = {} if rules is None else rules
    groups = []
    for name, param in named:
        group = dict(params=[param])
        for regexp, options in rules.items():
            if re.search(regexp, name):
                for key, value in options.items():
                    if key.endswith("_mult"):
                        key = key[:-5]
                        assert key in cfg, f"{key} not in optimizer_cfg"
                        value = cfg[key] * value
                    group[key] = value
        groups.append(group)
    return cfg, groups
