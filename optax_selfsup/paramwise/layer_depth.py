"""MMPretrain's layer-wise lr decay: ``get_layer_depth`` rules and the constructor's groups.

Upstream: ``mmpretrain/engine/optimizers/layer_decay_optim_wrapper_constructor.py`` and the
``get_layer_depth`` methods of MMPretrain 1.2.0's classifiers and backbones. With
``constructor='LearningRateDecayOptimWrapperConstructor'`` and a non-empty ``paramwise_cfg``
every trainable parameter ``name`` (dotted, no leading dot) gets its own group:

* ``weight_decay``: the first ``custom_keys`` key (longest first, ties alphabetical) that is a
  substring of ``name`` gives ``base_wd * decay_mult`` and copies its other keys into the group
  (its ``lr_mult`` is copied but NOT applied); otherwise norm layer -> ``norm_decay_mult``,
  ``bias`` -> ``bias_decay_mult``, 1-d -> ``flat_decay_mult`` (first that is given), else
  ``base_wd``. There is no depthwise-conv rule.
* ``lr = base_lr * layer_decay_rate ** (max_id - layer_id - 1)``, plus the keys ``lr_scale``
  (that power), ``layer_id`` and ``param_name``, with ``(layer_id, max_id)`` from the model's
  ``get_layer_depth(name)``: every model type in ``MODELS`` (``ImageClassifier`` and the
  self-supervised algorithms) asks its backbone, ``backbone.get_layer_depth(name, 'backbone.')``.

The backbone rules (``prefix = 'backbone.'``; a name without it, e.g. the head, gets the
deepest id unless said otherwise), with the depths read from the config's ``arch``
(:mod:`.mmpretrain_archs`, not from the parameters present):

* ``vit`` (``VisionTransformer`` and its subclasses, ``BEiTViT``, ``ViTSAM``):
  ``max_id = num_layers + 2``; ``cls_token``, ``pos_embed``, ``patch_embed*`` -> 0,
  ``layers.i.*`` -> ``i + 1``, anything else (the final ``ln1``, the head) -> ``num_layers + 1``.
* ``hivit``: the same with ``num_layers`` = the number of ``blocks``, but the stem test is
  ``name in 'pos_embed'`` (a substring OF ``'pos_embed'``) and HiViT names its blocks
  ``blocks.i``, so only ``pos_embed`` and ``patch_embed*`` leave the deepest id (upstream's).
* ``swin``: ``max_id = sum(depths) + 2``; ``patch_embed*`` -> 0; ``stages.s.blocks.b.*`` ->
  ``sum(depths[:s]) + b + 1``; ``stages.s.downsample.*`` (4th name part ``norm`` /
  ``reduction``) -> ``sum(depths[:s + 1])``; anything else -> ``max_id - 1``.
* ``convnext``: ``m = 12 if depths[-2] > 9 else 6``, ``max_id = m + 2``;
  ``downsample_layers.s`` -> 0, 2, 3, ``m`` for ``s`` = 0..3; ``stages.s.b`` -> ``s + 1`` for
  ``s`` < 2, ``3 + b // 3`` for ``s == 2``, ``m`` for ``s == 3``; other backbone names
  (the final norm) and the head -> ``m + 1``.
* ``resnet`` (every ``ResNet`` subclass): stage blocks ``(·, d1, d2, ·)`` pick the block grouping
  ``(b2, b3)``: ``(4, 6)`` / ``(4, 23)`` -> ``(2, 3)``, ``(8, 36)`` / ``(24, 36)`` -> ``(4, 4)``,
  ``(30, 48)`` -> ``(5, 6)``; any other depths (ResNet-18) are refused as upstream raises.
  ``N = 2 + ceil(d1 / b2) + ceil(d2 / b3)``, ``max_id = N + 2``; ``backbone.layer1.*`` -> 1,
  ``layer2.b`` -> ``2 + b // b2``, ``layer3.b`` -> ``2 + ceil(d1 / b2) + b // b3``, ``layer4``
  -> ``N``; other backbone names (the stem) -> 0; the head -> ``N + 1``.
* ``mixmim``: ``max_id = sum(depths) + 2``; a non-backbone name starting with ``neck`` ->
  ``max_id - 2``, the head -> ``max_id - 1``; a backbone name CONTAINING ``patch_embed``,
  ``absolute_pos_embed`` or ``pos_embed`` -> 0; ``layers.l.blocks.b`` ->
  ``sum(depths[:l]) + b + 1``; ``layers.l.downsample.*`` -> ``sum(depths[:l + 1])``; anything
  else (the final norm) -> ``max_id - 2``.

A name inside a rule's scheme that upstream cannot parse (``layers.x``, ``stages.0`` with too few
parts; upstream dies in ``int()``), an index beyond the arch (``layers.12`` of a 12-layer arch),
and a tree in which no parameter follows the scheme (a Flax tree not translated to torch names:
upstream would silently give every parameter the deepest id) are refused with a
:class:`ConfigError` naming the parameter.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

from ..errors import ConfigError, choices
from .custom_keys import ParamGroups, check_paramwise_cfg, mmengine_order, sorted_custom_keys
from .mmpretrain_archs import BACKBONES, MODELS
from .module_kinds import ModuleKinds, guess_module_kinds

#: ``paramwise_cfg`` keys MMPretrain's layer-decay constructor reads.
LAYER_DECAY_KEYS = ("layer_decay_rate", "custom_keys", "bias_decay_mult", "norm_decay_mult",
                    "flat_decay_mult")
CONSTRUCTOR = "LearningRateDecayOptimWrapperConstructor"
#: The pattern each rule's per-layer names follow (for messages and the "nothing matched" check).
SCHEME = {"vit": "layers.<i>.", "hivit": "blocks.<i>.", "swin": "stages.<s>.",
          "convnext": "stages.<s>.", "resnet": "layer<s>.", "mixmim": "layers.<l>."}


def _type_name(cfg_type) -> str:
    return str(cfg_type).rsplit(".", 1)[-1]


def backbone_facts(backbone_cfg: Mapping):
    """``(rule, facts)`` for a backbone config: the depth rule and what it reads of the arch."""
    btype = _type_name(backbone_cfg.get("type"))
    entry = BACKBONES.get(btype)
    if entry is None:
        raise ConfigError(f"model.backbone.type={btype!r} has no get_layer_depth in MMPretrain "
                          f"1.2.0 (upstream raises NotImplementedError); backbones with layer "
                          f"decay: {choices(BACKBONES)}")
    rule = entry["rule"]
    if rule == "resnet":
        key = backbone_cfg.get("depth", backbone_cfg.get("arch"))
        where = "depth" if "depth" in backbone_cfg else "arch"
    else:
        key = backbone_cfg.get("arch", entry["default"])
        where = "arch"
    if isinstance(key, Mapping):
        field = {"vit": "num_layers", "swin": "depths", "convnext": "depths",
                 "mixmim": "depths", "resnet": None, "hivit": None}[rule]
        if field is None or field not in key:
            raise ConfigError(f"model.backbone.{where} of {btype} is a dict without the layer "
                              f"count its get_layer_depth reads; give a named arch: "
                              f"{choices(entry['archs'])}")
        value = key[field]
    else:
        lookup = key.lower() if entry["lowercases"] and isinstance(key, str) else key
        if lookup not in entry["archs"]:
            raise ConfigError(f"model.backbone.{where}={key!r} is not an arch of {btype}; "
                              f"archs: {choices(entry['archs'])}")
        value = entry["archs"][lookup]
        if isinstance(value, str):
            raise ConfigError(f"model.backbone.{where}={key!r}: MMPretrain cannot build {btype} "
                              f"with it ({value})")
    if rule == "resnet":
        value = tuple(value)[:backbone_cfg.get("num_stages", 4)]
    return rule, (tuple(value) if isinstance(value, Sequence) else int(value))


def _bad(name, btype, rule, why):
    return ConfigError(f"parameter {name!r}: {why} ({btype} names its layers "
                       f"'backbone.{SCHEME[rule]}...'; upstream's get_layer_depth crashes on it)")


def _vit(name, n, hivit=False):
    max_id = n + 2
    stem = name in "pos_embed" if hivit else name in ("cls_token", "pos_embed")
    if stem or name.startswith("patch_embed"):
        return 0, max_id
    if name.startswith("layers"):
        i = int(name.split(".")[1])
        if i >= n:
            raise IndexError(f"layer {i} of a {n}-layer arch")
        return i + 1, max_id
    return max_id - 1, max_id


def _swin(name, depths):
    max_id = sum(depths) + 2
    if name.startswith("patch_embed"):
        return 0, max_id
    if name.startswith("stages"):
        parts = name.split(".")
        stage, block = int(parts[1]), parts[3]
        if stage >= len(depths):
            raise IndexError(f"stage {stage} of a {len(depths)}-stage arch")
        if block in ("reduction", "norm"):
            return sum(depths[:stage + 1]), max_id
        if int(block) >= depths[stage]:
            raise IndexError(f"block {block} of stage {stage}, which has {depths[stage]}")
        return sum(depths[:stage]) + int(block) + 1, max_id
    return max_id - 1, max_id


def _convnext(name, depths):
    m = 12 if depths[-2] > 9 else 6
    if name.startswith("downsample_layers"):
        stage = int(name.split(".")[1])
        return (0 if stage == 0 else stage + 1 if stage in (1, 2) else m), m + 2
    if name.startswith("stages"):
        parts = name.split(".")
        stage, block = int(parts[1]), int(parts[2])
        if stage >= len(depths) or block >= depths[stage]:
            raise IndexError(f"block {stage}.{block} of an arch with depths {depths}")
        return (stage + 1 if stage < 2 else 3 + block // 3 if stage == 2 else m), m + 2
    return m + 1, m + 2


_RESNET_GROUPING = {(4, 6): (2, 3), (4, 23): (2, 3), (8, 36): (4, 4), (24, 36): (4, 4),
                    (30, 48): (5, 6)}


def _resnet(full_name, depths):
    grouping = _RESNET_GROUPING.get(tuple(depths[1:3]))
    if grouping is None:
        raise ConfigError(f"ResNet stage blocks {tuple(depths)} have no layer-decay grouping in "
                          f"MMPretrain (upstream raises NotImplementedError); supported middle "
                          f"stages: {choices(_RESNET_GROUPING)}")
    b2, b3 = grouping
    n2, n3 = math.ceil(depths[1] / b2 - 1e-5), math.ceil(depths[2] / b3 - 1e-5)
    n = 2 + n2 + n3
    if not full_name.startswith("backbone."):
        return n + 1, n + 2
    if full_name.startswith("backbone.layer"):  # upstream ignores its prefix here
        parts = full_name.split(".")
        stage, block = int(parts[1][5:]), int(parts[2])
        if 1 <= stage <= len(depths) and block >= depths[stage - 1]:
            raise IndexError(f"block {block} of layer{stage}, which has {depths[stage - 1]}")
        layer = {1: 1, 2: 2 + block // b2, 3: 2 + n2 + block // b3}.get(stage, n)
        return layer, n + 2
    return 0, n + 2


def _mixmim(full_name, name, depths):
    max_id = sum(depths) + 2
    if name is None:
        return (max_id - 2 if full_name.startswith("neck") else max_id - 1), max_id
    if any(stem in name for stem in ("patch_embed", "absolute_pos_embed", "pos_embed")):
        return 0, max_id
    if name.startswith("layers"):
        parts = name.split(".")
        layer, block = int(parts[1]), parts[3]
        if layer >= len(depths):
            raise IndexError(f"layer {layer} of a {len(depths)}-layer arch")
        if block in ("downsample", "reduction", "norm"):
            return sum(depths[:layer + 1]), max_id
        if int(block) >= depths[layer]:
            raise IndexError(f"block {block} of layer {layer}, which has {depths[layer]}")
        return sum(depths[:layer]) + int(block) + 1, max_id
    return max_id - 2, max_id


def _follows_scheme(rule, full_name) -> bool:
    name = full_name[len("backbone."):] if full_name.startswith("backbone.") else None
    if name is None:
        return False
    head = {"vit": "layers.", "hivit": "blocks.", "swin": "stages.", "convnext": "stages.",
            "resnet": "layer", "mixmim": "layers."}[rule]
    return name.startswith(head)


def layer_depth_fn(model_cfg: Mapping):
    """``name -> (layer_id, max_id)`` as the model's ``get_layer_depth`` (see module doc).

    ``model_cfg``: the config's ``model`` (``type``, ``backbone=dict(type, arch | depth)``).
    """
    if not isinstance(model_cfg, Mapping):
        raise ConfigError(f"{CONSTRUCTOR} needs the config's model (type and backbone) to find "
                          f"each parameter's layer, got {model_cfg!r}")
    mtype = _type_name(model_cfg.get("type"))
    if mtype not in MODELS:
        raise ConfigError(f"model.type={mtype!r} has no get_layer_depth in MMPretrain 1.2.0 "
                          f"(upstream raises NotImplementedError); models with layer decay: "
                          f"{choices(MODELS)}")
    backbone = model_cfg.get("backbone")
    if not isinstance(backbone, Mapping):
        raise ConfigError(f"model.backbone of {mtype} must be a dict with the backbone's type "
                          f"and arch, got {backbone!r}")
    btype = _type_name(backbone.get("type"))
    rule, facts = backbone_facts(backbone)

    def depth(full_name: str):
        name = full_name[len("backbone."):] if full_name.startswith("backbone.") else None
        try:
            if rule == "resnet":
                return _resnet(full_name, facts)
            if rule == "mixmim":
                return _mixmim(full_name, name, facts)
            if name is None:
                top = (facts + 2 if rule in ("vit", "hivit") else sum(facts) + 2
                       if rule == "swin" else (12 if facts[-2] > 9 else 6) + 2)
                return top - 1, top
            if rule in ("vit", "hivit"):
                return _vit(name, facts, hivit=rule == "hivit")
            if rule == "swin":
                return _swin(name, facts)
            return _convnext(name, facts)
        except (ValueError, IndexError) as err:
            raise _bad(full_name, btype, rule, f"{err} for arch {facts}") from None

    depth.rule, depth.facts, depth.backbone = rule, facts, btype
    return depth


def resolve_constructor(constructor, default_scope) -> str:
    """``'default'`` or ``'layer_decay'``: which constructor a config's ``constructor`` names
    under its ``default_scope`` (an explicit ``'mmpretrain.'`` prefix wins)."""
    if constructor is None or _type_name(constructor) == "DefaultOptimWrapperConstructor":
        return "default"
    if not isinstance(constructor, str):
        raise ConfigError(f"optim_wrapper.constructor must be a registered name, got "
                          f"{constructor!r}")
    scope, _, name = constructor.rpartition(".")
    if name != CONSTRUCTOR:
        known = ["DefaultOptimWrapperConstructor", CONSTRUCTOR]
        raise ConfigError(f"optim_wrapper.constructor={constructor!r} is not supported; "
                          f"constructors: {choices(known)}")
    scope = scope or default_scope
    if scope == "mmpretrain":
        return "layer_decay"
    if scope == "mmselfsup":
        raise ConfigError(f"optim_wrapper.constructor={constructor!r} under default_scope "
                          "'mmselfsup' is MMSelfSup 1.0's constructor of that name (layer decay "
                          "by model_type and name parsing), which this port does not implement; "
                          "MMPretrain's (default_scope='mmpretrain') is supported")
    raise ConfigError(f"optim_wrapper.constructor={constructor!r} is registered only in the "
                      f"'mmpretrain' (and 'mmselfsup') scope, but default_scope is "
                      f"{default_scope!r}: MMEngine cannot find it; set "
                      "default_scope='mmpretrain'")


def layer_decay_param_groups(names: Sequence[str], shapes: Sequence[Sequence[int]],
                             optimizer_cfg: Mapping, paramwise_cfg: Mapping | None, *,
                             model_cfg: Mapping, kinds: ModuleKinds | None = None, frozen=(),
                             where: str = "optim_wrapper") -> ParamGroups:
    """MMPretrain ``LearningRateDecayOptimWrapperConstructor``'s groups for torch-style
    ``names`` (see the module doc). ``model_cfg``: the config's ``model``; ``kinds``: norm
    layers (by default guessed from names, see ``ParamGroups.depends_on_guess``)."""
    names, shapes = list(names), [tuple(s) for s in shapes]
    if len(names) != len(shapes):
        raise ConfigError(f"layer_decay_param_groups: {len(names)} names but {len(shapes)} "
                          "shapes")
    shape_of = dict(zip(names, shapes))
    names = mmengine_order(names)
    shapes = [shape_of[n] for n in names]
    cfg = check_paramwise_cfg(paramwise_cfg, optimizer_cfg, LAYER_DECAY_KEYS, where)
    if not cfg:
        return ParamGroups(False, tuple(names), ({},))
    base_wd, base_lr = optimizer_cfg.get("weight_decay"), optimizer_cfg.get("lr")
    if base_wd is None:
        raise ConfigError(f"{where}.optimizer needs a weight_decay with {CONSTRUCTOR} "
                          "(upstream crashes with KeyError: 'weight_decay')")
    if not isinstance(base_lr, int | float) or isinstance(base_lr, bool):
        raise ConfigError(f"{where}.optimizer.lr is {base_lr!r}; {CONSTRUCTOR} multiplies it by "
                          "each layer's scale")
    rate = cfg.get("layer_decay_rate", 1.0)
    if not isinstance(rate, int | float) or isinstance(rate, bool):
        raise ConfigError(f"{where}.paramwise_cfg.layer_decay_rate must be a number, got {rate!r}")
    custom = cfg.get("custom_keys", {})
    for key, settings in custom.items():
        if "lr_mult" in settings:
            warnings.warn(f"{where}.paramwise_cfg.custom_keys[{key!r}].lr_mult has no effect on "
                          f"the lr with {CONSTRUCTOR} (upstream copies it into the group and "
                          "ignores it; only decay_mult and the layer depth act)", UserWarning,
                          stacklevel=2)
    depth = layer_depth_fn(model_cfg)
    if not any(_follows_scheme(depth.rule, n) for n in names):
        raise ConfigError(
            f"no parameter is named like {depth.backbone}'s layers "
            f"('backbone.{SCHEME[depth.rule]}...'): upstream would give every parameter the same "
            f"depth. Name the leaves as the torch model does (name_map); first names: "
            f"{', '.join(map(repr, names[:5]))}")
    if kinds is None:
        kinds = guess_module_kinds(names, shapes)
    keys = sorted_custom_keys(custom)
    frozen = set(frozen)

    def decay(name, shape, is_norm):
        key = next((k for k in keys if k in name), None)
        group: dict = {}
        if key is not None:
            settings = dict(custom[key])
            group["weight_decay"] = base_wd * settings.pop("decay_mult", 1.0)
            group.update(settings)
            return group
        attr = name.rpartition(".")[2]
        for applies, mult in ((is_norm, "norm_decay_mult"), (attr == "bias", "bias_decay_mult"),
                              (len(shape) == 1, "flat_decay_mult")):
            if applies and cfg.get(mult) is not None:
                group["weight_decay"] = base_wd * cfg[mult]
                return group
        group["weight_decay"] = base_wd
        return group

    guessed = set(kinds.guessed_norm)
    kept, groups, depends = [], [], []
    for name, shape in zip(names, shapes):
        if name in frozen:
            continue
        is_norm = kinds.is_norm(name)
        group = decay(name, shape, is_norm)
        if name in guessed and decay(name, shape, not is_norm) != group:
            depends.append(name)
        layer_id, max_id = depth(name)
        scale = rate ** (max_id - layer_id - 1)
        group.update(lr=base_lr * scale, lr_scale=scale, layer_id=layer_id, param_name=name)
        kept.append(name)
        groups.append(group)
    return ParamGroups(True, tuple(kept), tuple(groups),
                       tuple(n for n in names if n in frozen), tuple(depends))
