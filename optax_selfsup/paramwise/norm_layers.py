"""Warn when the paramwise rules treat normalization layers unevenly.

MMSelfSup's rules select normalization layers by torch names
(``'(bn|gn)(\\d+)?.(weight|bias)'``, ``'norm'``, ``'ln'``). A Flax model named otherwise
(``bn_init``, ``norm_proj``) silently keeps weight decay or LARS adaptation on
those layers while the other normalization layers lose it. A normalization
layer is recognised from the tree itself: a module whose parameters are a 1-D
``scale`` (Flax) or 1-D ``weight`` (torch names) and optionally a 1-D ``bias``,
nothing else. When such layers' scales (or biases) end up with different
settings, ``NormLayerWarning`` names them, grouped by setting. The warning can
be upstream's own unevenness (MMSelfSup's ``(bn|gn)(\\d+)?.(weight|bias)`` rule
misses torch ResNet's ``downsample.1`` BatchNorms; MAE's ``'ln'`` rule selects
every LayerNorm of its ViT, ``ln1`` / ``ln2``, so it gives none); once checked,
filter it with ``warnings.filterwarnings('ignore', category=oss.NormLayerWarning)``.
"""

from __future__ import annotations

import warnings
from collections import defaultdict


class NormLayerWarning(UserWarning):
    """Normalization layers get different optimizer settings from the paramwise rules."""


def norm_layer_roles(raw_names, shapes) -> dict[int, str]:
    """Leaf index -> 'scale' or 'bias' for the leaves of normalization layers."""
    modules: dict[str, dict[str, int]] = defaultdict(dict)
    for i, name in enumerate(raw_names):
        parent, _, leaf = name.rpartition(".")
        modules[parent][leaf] = i
    roles = {}
    for leaves in modules.values():
        scale = leaves.get("scale", leaves.get("weight"))
        if scale is None or not set(leaves) <= {"scale", "weight", "bias"} or len(leaves) > 2:
            continue
        if any(len(shapes[i]) != 1 for i in leaves.values()):
            continue
        roles[scale] = "scale"
        if "bias" in leaves:
            roles[leaves["bias"]] = "bias"
    return roles


PLURAL = {"scale": "scales", "bias": "biases"}


def warn_uneven_norm_layers(raw_names, names, shapes, settings, limit: int = 6) -> None:
    """``names``: the translated (torch-style) names the rules saw; ``settings[i]``: a
    hashable summary of leaf ``i``'s optimizer settings."""
    roles = norm_layer_roles(raw_names, shapes)
    shown_name = [raw if raw == name else f"{raw} (as {name})"
                  for raw, name in zip(raw_names, names)]
    for role in ("scale", "bias"):
        groups: dict = defaultdict(list)
        for i, r in roles.items():
            if r == role:
                groups[settings[i]].append(shown_name[i])
        if len(groups) < 2:
            continue
        dicts = [dict(setting) for setting in groups]
        differing = [k for k in dicts[0] if len({repr(d.get(k)) for d in dicts}) > 1]
        parts = []
        for setting, names in sorted(groups.items(), key=lambda kv: len(kv[1])):
            values = dict(setting)
            shown = ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)"
                                               if len(names) > limit else "")
            parts.append(", ".join(f"{k}={values[k]}" for k in differing) + f" for {shown}")
        warnings.warn(
            f"normalization-layer {PLURAL[role]} get different settings from the paramwise "
            "rules: "
            + "; ".join(parts) + ". MMSelfSup's own regex '(bn|gn)(\\d+)?.(weight|bias)' "
            "misses torch ResNet's 'downsample.1' BatchNorms too: where only those differ, the "
            "run is upstream's. If a layer is named unlike the torch model the config's "
            "regexes were written for (e.g. Flax's 'bn_init' for torch's 'bn1'), pass "
            "build_optimizer(..., name_map=...) (see docs/flax.md); oss.describe(cfg, params) "
            "shows every parameter's settings.", NormLayerWarning, stacklevel=4)
