"""MMSelfSup's parameter-wise options: regex rules -> per-parameter option dicts (SPEC 5).

``paramwise_options`` is an ordered dict from regular expression to options.
For every parameter name, each rule whose regex ``re.search``-es the name is
applied in order (later rules override earlier ones); ``X_mult`` sets
``X = optimizer[X] * value``, any other key sets its value directly.
Upstream: ``DefaultOptimizerConstructor`` / ``TransformerFinetuneConstructor``
(MMSelfSup 0.x), including the latter's ViT / Swin layer-wise lr decay.
"""

from __future__ import annotations

import re
import warnings

from .errors import ConfigError, choices

CONSTRUCTORS = ("DefaultOptimizerConstructor", "TransformerFinetuneConstructor")


def compile_rules(paramwise_options: dict):
    if not isinstance(paramwise_options, dict):
        raise ConfigError(f"optimizer.paramwise_options must be a dict from regex to options, "
                          f"got {type(paramwise_options).__name__}")
    compiled = []
    for pattern, options in paramwise_options.items():
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ConfigError(f"optimizer.paramwise_options: invalid regular expression "
                              f"{pattern!r}: {err}") from None
        if not isinstance(options, dict):
            raise ConfigError(f"optimizer.paramwise_options[{pattern!r}] must be a dict of "
                              f"options, got {options!r}")
        compiled.append((pattern, regex, options))
    return compiled


def resolve_paramwise(names, optimizer_cfg: dict, paramwise_options: dict):
    """Per-parameter option dicts (only the keys the rules set) and the unmatched rules."""
    rules = compile_rules(paramwise_options)
    matched = set()
    per_param = []
    for name in names:
        group = {}
        for pattern, regex, options in rules:
            if not regex.search(name):
                continue
            matched.add(pattern)
            for key, value in options.items():
                if key.endswith("_mult"):
                    base = key[: -len("_mult")]
                    if base not in optimizer_cfg:
                        raise ConfigError(
                            f"optimizer.paramwise_options[{pattern!r}].{key}: the optimizer "
                            f"config has no {base!r} to multiply (it has "
                            f"{choices(k for k in optimizer_cfg if k != 'type')})")
                    group[base] = optimizer_cfg[base] * value
                else:
                    group[key] = value
        per_param.append(group)
    unmatched = [p for p, _, _ in rules if p not in matched]
    return per_param, unmatched


def warn_unmatched(unmatched) -> None:
    if unmatched:
        warnings.warn(
            "optimizer.paramwise_options rule(s) matching no parameter: "
            f"{', '.join(map(repr, unmatched))} (upstream silently ignores them; an mmcv "
            "paramwise_cfg key such as 'norm_decay_mult' is not a regex here)",
            UserWarning, stacklevel=3)


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
    options = {k: dict(v) for k, v in paramwise_options.items()}
    for key in ("pos_embed", "cls_token", "patch_embed"):
        options.setdefault(key, {})["lr_mult"] = scales[0]
    for i in range(num_layers - 1):
        options[f"backbone\\.layers\\.{i}\\."] = dict(lr_mult=scales[i + 1])
    return options


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
    options = {k: dict(v) for k, v in paramwise_options.items()}
    for name in names:
        options[name] = dict(lr_mult=scales[_swin_layer(name, num_layers, depths)])
    return options


def constructor_options(names, optimizer_cfg: dict):
    """Apply ``constructor`` / ``model_type`` / ``layer_decay``; returns (paramwise, opt cfg).

    ``paramwise`` is None when every parameter shares the optimizer's settings.
    """
    opt = dict(optimizer_cfg)
    constructor = opt.pop("constructor", "DefaultOptimizerConstructor")
    if constructor not in CONSTRUCTORS:
        raise ConfigError(f"optimizer.constructor={constructor!r} is unknown; valid: "
                          f"{choices(CONSTRUCTORS)}")
    paramwise = opt.pop("paramwise_options", None)
    if constructor == "DefaultOptimizerConstructor":
        for key in ("layer_decay", "model_type"):
            if key in opt:
                raise ConfigError(f"optimizer.{key} needs constructor="
                                  "'TransformerFinetuneConstructor'")
        return paramwise, opt
    layer_decay = opt.pop("layer_decay", 0.0)
    model_type = opt.pop("model_type", None)
    paramwise = {} if paramwise is None else paramwise
    if layer_decay > 0:
        if model_type == "vit":
            paramwise = vit_layer_decay(names, layer_decay, paramwise)
        elif model_type == "swin":
            paramwise = swin_layer_decay(names, layer_decay, paramwise)
        else:
            raise ConfigError(f"optimizer.model_type={model_type!r}: layer-wise lr decay "
                              f"supports {choices(['vit', 'swin'])}")
    return paramwise, opt
