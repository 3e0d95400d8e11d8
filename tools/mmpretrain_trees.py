#!/usr/bin/env python
"""Record MMPretrain's real models and MMEngine's real param groups, for the paramwise tests.

Builds, with the real MMPretrain 1.2.0 classes, the model of every real MMSelfSup 1.0.0 /
MMPretrain 1.2.0 config that has an ``optim_wrapper`` (``parity_tests/data/upstream_views.json``),
one per distinct (model, ``paramwise_cfg``, constructor, ``default_scope``), on torch's ``meta``
device (no weights are allocated), and writes:

* ``parity_tests/data/mmengine_paramwise.json.gz``: per model, every parameter in
  ``named_parameters()`` order: name, shape, ``requires_grad``, the owning module's class and
  MMEngine's two module facts (norm layer: ``_BatchNorm`` / ``_InstanceNorm`` / ``GroupNorm`` /
  ``LayerNorm``; depthwise conv: ``nn.Conv2d`` with ``in_channels == groups``); per config
  combination, the param groups the real constructor (``DefaultOptimWrapperConstructor`` or
  MMPretrain's ``LearningRateDecayOptimWrapperConstructor``, with the model's real
  ``get_layer_depth``) builds on that model, or the error it raises; and why a combination
  could not be recorded. Long repeated blocks are pruned afterwards (a list index is kept when
  it is 0, 1 or the last, or the list has at most 4 entries) so the file stays small.
* ``optax_selfsup/paramwise/mmpretrain_archs.py``: for every backbone class with a
  ``get_layer_depth``, each arch it accepts and what the depth rule reads of it
  (``num_layers``, ``depths``, ``stage_blocks``), read from instances of the real classes.

Needs, next to mmengine 0.10.7, torch and the mmpretrain 1.2.0 wheel, the pure-Python
``mmcv-lite==2.2.0`` and what ``mmpretrain.models`` imports, installed into a separate folder
(the project itself never imports them)::

    pip install --no-deps --target /tmp/mmcv_lite mmcv-lite==2.2.0 "importlib_metadata<8" \\
        zipp einops model-index ordered-set markdown mat4py
    python tools/mmpretrain_trees.py --site /tmp/mmcv_lite

``torchvision`` (imported by MMPretrain's metrics, never by a model) is a stub module here, the
package ``__init__`` (inferencers, datasets) is skipped, ``torch.linspace`` runs on the CPU
(the drop-path rates are read with ``.item()``) and checkpoint loading is a no-op (the CLIP
target generators of EVA / iTPN load weights in ``__init__``).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import pathlib
import pprint
import sys
import types
import warnings

REPO = pathlib.Path(__file__).resolve().parents[1]
OUT_JSON = REPO / "parity_tests" / "data" / "mmengine_paramwise.json.gz"
OUT_ARCHS = REPO / "optax_selfsup" / "paramwise" / "mmpretrain_archs.py"


class _Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] == "torchvision":
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Stub(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def load_mmpretrain(site: str):
    sys.path.insert(0, site)
    sys.meta_path.insert(0, _StubFinder())
    spec = importlib.util.find_spec("mmpretrain")
    package = types.ModuleType("mmpretrain")
    package.__path__ = [str(pathlib.Path(spec.origin).parent)]
    package.__spec__ = spec
    package.__version__ = "1.2.0"
    sys.modules["mmpretrain"] = package
    import torch

    linspace = torch.linspace

    @functools.wraps(linspace)
    def cpu_linspace(*args, **kwargs):
        kwargs.setdefault("device", "cpu")
        return linspace(*args, **kwargs)

    torch.linspace = cpu_linspace
    import mmengine.runner.checkpoint as ckpt

    ckpt.load_checkpoint = lambda *a, **k: {}
    ckpt.CheckpointLoader.load_checkpoint = classmethod(lambda cls, *a, **k: {})
    import mmpretrain.engine.optimizers  # noqa: F401  (registers the layer-decay constructor)
    import mmpretrain.models  # noqa: F401


# -- module facts ------------------------------------------------------------------------------

def module_facts(model):
    from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm, _InstanceNorm
    from torch import nn

    rows = []
    for path, module in model.named_modules():
        is_norm = isinstance(module, _BatchNorm | _InstanceNorm | nn.GroupNorm | nn.LayerNorm)
        is_dw = isinstance(module, nn.Conv2d) and module.in_channels == module.groups
        for attr, p in module.named_parameters(recurse=False):
            rows.append(dict(name=f"{path}.{attr}" if path else attr, shape=list(p.shape),
                             trainable=bool(p.requires_grad), module=type(module).__name__,
                             norm=is_norm, dwconv=is_dw))
    order = {n: i for i, (n, _) in enumerate(model.named_parameters())}
    rows = [r for r in rows if r["name"] in order]  # shared parameters: first owner only
    seen, unique = set(), []
    for r in sorted(rows, key=lambda r: order[r["name"]]):
        if r["name"] not in seen:
            seen.add(r["name"])
            unique.append(r)
    return unique


def keep_name(name: str, siblings: dict) -> bool:
    parts = name.split(".")
    for k, part in enumerate(parts):
        if part.isdigit():
            last = siblings[".".join(parts[:k])]
            i = int(part)
            if not (last <= 3 or i <= 1 or i == last):
                return False
    return True


def sibling_table(names) -> dict:
    table: dict = {}
    for name in names:
        parts = name.split(".")
        for k, part in enumerate(parts):
            if part.isdigit():
                key = ".".join(parts[:k])
                table[key] = max(table.get(key, 0), int(part))
    return table


def jsonable(value):
    if isinstance(value, float | int | bool | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return repr(value)


def upstream_groups(model, optim_wrapper: dict, scope: str):
    """The groups the real constructor builds on ``model``, or ``{"error": ...}``."""
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, DefaultScope

    ow = dict(optim_wrapper)
    constructor = ow.pop("constructor", "DefaultOptimWrapperConstructor")
    paramwise_cfg = ow.pop("paramwise_cfg", None)
    try:
        with DefaultScope.overwrite_default_scope(scope):
            ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
                type=constructor, optim_wrapper_cfg=ow, paramwise_cfg=paramwise_cfg))
            if not ctor.paramwise_cfg:
                return {"single": True}
            params: list = []
            ctor.add_params(params, model)
    except Exception as err:  # noqa: BLE001  (the upstream error is the record)
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
    names = {id(p): n for n, p in model.named_parameters()}
    return {"groups": {names[id(g["params"][0])]: jsonable({k: v for k, v in g.items()
                                                            if k != "params"})
                       for g in params}}


def build(model_cfg, scope):
    import torch
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    with torch.device("meta"), DefaultScope.overwrite_default_scope("mmpretrain"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MODELS.build(model_cfg)


def record_configs() -> dict:
    sys.path.insert(0, str(REPO / "parity_tests"))
    from mmengine.config import Config

    from upstream_data import config_path, generation, load_views

    models: dict = {}
    combos: dict = {}
    skipped: dict = {}
    model_index: dict = {}
    for rel, view in load_views().items():
        if generation(rel) != "1.x" or "error" in view or "optim_wrapper" not in view:
            continue
        ow = view["optim_wrapper"]
        scope = view.get("default_scope") or "mmengine"
        cfg = Config.fromfile(str(config_path(rel)))
        model_cfg = cfg.to_dict().get("model")
        combo_key = json.dumps([ow.get("paramwise_cfg"), ow.get("constructor"), scope,
                                ow.get("optimizer"), model_cfg], sort_keys=True, default=repr)
        if combo_key in combos or combo_key in skipped:
            (combos.get(combo_key) or skipped[combo_key])["configs"].append(rel)
            continue
        if not ow.get("paramwise_cfg"):  # one group whatever the model: no tree needed
            combos[combo_key] = dict(configs=[rel], scope=scope, optim_wrapper=jsonable(ow),
                                     upstream=upstream_groups(None, ow, scope))
            continue
        if model_cfg is None:
            skipped[combo_key] = dict(configs=[rel], reason="the config has no model")
            continue
        model_key = json.dumps(model_cfg, sort_keys=True, default=repr)
        if model_key not in model_index:
            try:
                model = build(model_cfg, scope)
            except Exception as err:  # noqa: BLE001
                text = (str(err).splitlines() or [""])[0][:200]
                model_index[model_key] = (None, f"{type(err).__name__}: {text}")
            else:
                mid = f"m{len(models)}"
                models[mid] = dict(model_type=model_cfg.get("type"),
                                   backbone=(model_cfg.get("backbone") or {}).get("type"),
                                   params=module_facts(model), first_config=rel)
                model_index[model_key] = (mid, model)
        mid, model = model_index[model_key]
        if mid is None:
            skipped[combo_key] = dict(configs=[rel], reason=f"MMPretrain 1.2.0 cannot build "
                                      f"the model on this machine: {model}")
            continue
        combos[combo_key] = dict(configs=[rel], model=mid, scope=scope,
                                 model_cfg=jsonable(model_facts_cfg(model_cfg)),
                                 optim_wrapper=jsonable(ow),
                                 upstream=upstream_groups(model, ow, scope))
        print(f"{len(combos):4d} {rel}", file=sys.stderr)
    prune(models, combos)
    return compact(models, list(combos.values()), list(skipped.values()))


def compact(models: dict, combos: list, skipped: list) -> dict:
    """Trees deduplicated (dims above 2 written as 2: what the rules read of a shape is its
    length and whether a dim is 1), only for combinations with one group per parameter; the
    groups of a combination as a table of distinct dicts and one index per tree parameter
    (-1: not in any group)."""
    trees: dict = {}
    tree_of_model: dict = {}
    classes: list = []
    out_combos = []
    for combo in combos:
        groups = combo["upstream"].get("groups")
        if groups is None:
            out_combos.append(combo)
            continue
        mid = combo.pop("model")
        if mid not in tree_of_model:
            rows = models[mid]["params"]
            for r in rows:
                if r["module"] not in classes:
                    classes.append(r["module"])
            tree = dict(names=[r["name"] for r in rows],
                        shapes=[[min(d, 2) for d in r["shape"]] for r in rows],
                        modules=[classes.index(r["module"]) for r in rows],
                        norm=[i for i, r in enumerate(rows) if r["norm"]],
                        dwconv=[i for i, r in enumerate(rows) if r["dwconv"]],
                        frozen=[i for i, r in enumerate(rows) if not r["trainable"]])
            key = json.dumps(tree, sort_keys=True)
            tid = next((t for t, v in trees.items() if json.dumps(v, sort_keys=True) == key),
                       f"t{len(trees)}")
            trees[tid] = tree
            tree_of_model[mid] = tid
        tid = tree_of_model[mid]
        table: list = []
        index = []
        for name in trees[tid]["names"]:
            group = groups.get(name)
            if group is None:
                index.append(-1)
                continue
            if group not in table:
                table.append(group)
            index.append(table.index(group))
        combo["tree"] = tid
        combo["upstream"] = dict(table=table, group=index)
        out_combos.append(combo)
    return dict(trees=trees, module_classes=classes, combos=out_combos, skipped=skipped)


def model_facts_cfg(model_cfg: dict) -> dict:
    backbone = model_cfg.get("backbone") or {}
    facts = {"type": model_cfg.get("type")}
    if backbone:
        facts["backbone"] = {k: backbone[k] for k in ("type", "arch", "depth", "num_stages")
                             if k in backbone}
    return facts


def prune(models: dict, combos: dict) -> None:
    kept = {}
    for mid, m in models.items():
        siblings = sibling_table(r["name"] for r in m["params"])
        m["params"] = [r for r in m["params"] if keep_name(r["name"], siblings)]
        kept[mid] = {r["name"] for r in m["params"]}
    for combo in combos.values():
        groups = combo["upstream"].get("groups")
        if groups is not None:
            combo["upstream"]["groups"] = {n: g for n, g in groups.items()
                                           if n in kept[combo["model"]]}


# -- arch tables -------------------------------------------------------------------------------

RULE_OF = {"VisionTransformer.get_layer_depth": "vit", "BEiTViT.get_layer_depth": "vit",
           "ViTSAM.get_layer_depth": "vit", "HiViT.get_layer_depth": "hivit",
           "SwinTransformer.get_layer_depth": "swin", "ConvNeXt.get_layer_depth": "convnext",
           "ResNet.get_layer_depth": "resnet", "MixMIMTransformer.get_layer_depth": "mixmim"}
SELFSUP_OWNER = "BaseSelfSupervisor.get_layer_depth"


def arch_tables() -> dict:
    import inspect

    import torch
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    tables: dict = {}
    model_types = []
    # MoCoV3ViT's __init__ adds 'mocov3-s' / 'mocov3-small' to the arch_zoo dict it shares with
    # VisionTransformer and its other subclasses: read every class's own table before building
    snapshot = {}
    for name, cls in MODELS.module_dict.items():
        table = getattr(cls, "arch_zoo", None) or getattr(cls, "arch_settings", None)
        snapshot[name] = dict(table) if isinstance(table, dict) else {}
    for name, cls in sorted(MODELS.module_dict.items()):
        method = getattr(cls, "get_layer_depth", None)
        if method is None:
            continue
        owner = method.__qualname__
        if owner in ("ImageClassifier.get_layer_depth", SELFSUP_OWNER):
            model_types.append(name)
            continue
        rule = RULE_OF[owner]
        table = snapshot[name]
        archs = {}
        for arch in list(table) + (["mocov3-s", "mocov3-small"] if name == "MoCoV3ViT" else []):
            # RegNet (a ResNet) takes ``arch``; the other ResNets take ``depth``
            by_depth = rule == "resnet" and isinstance(arch, int)
            kwargs = {"depth": arch} if by_depth else {"arch": arch}
            if name == "MoCoV3ViT":
                kwargs["patch_size"] = 16  # required by its __init__
            with torch.device("meta"), warnings.catch_warnings(), \
                    DefaultScope.overwrite_default_scope("mmpretrain"):
                warnings.simplefilter("ignore")
                try:
                    inst = cls(**kwargs)
                except Exception as err:  # noqa: BLE001
                    settings = table.get(arch) if isinstance(table.get(arch), dict) else {}
                    key = "num_layers" if rule == "vit" else "depths"
                    archs[arch] = (settings[key] if key in settings and rule != "hivit"
                                   else f"error: {type(err).__name__}: {err}")
                    continue
            if rule == "vit":
                archs[arch] = inst.num_layers
            elif rule == "hivit":
                archs[arch] = len(inst.blocks)
            elif rule == "resnet":
                archs[arch] = tuple(inst.stage_blocks)
            else:
                archs[arch] = tuple(inst.depths)
        lowercases = rule != "convnext" and rule != "resnet"
        default = None
        if rule != "resnet":
            for klass in cls.__mro__:
                params = inspect.signature(klass.__init__).parameters
                if "arch" in params:
                    default = params["arch"].default
                    break
        tables[name] = dict(rule=rule, lowercases=lowercases, default=default, archs=archs)
    return dict(backbones=tables, models=model_types)


ARCHS_HEADER = '''"""MMPretrain 1.2.0 backbone archs, as ``get_layer_depth`` reads them.

Generated by ``tools/mmpretrain_trees.py`` from instances of the real classes; do not edit.
``BACKBONES[type]``: ``rule`` (which depth scheme, see ``layer_depth.py``), ``lowercases``
(whether a string ``arch`` is lower-cased before the lookup, as the class does), ``default``
(the ``arch`` when the config gives none) and ``archs``: arch -> what the rule reads
(``num_layers`` for ``vit``, the number of ``blocks`` for ``hivit``, ``depths`` for ``swin`` /
``convnext`` / ``mixmim``, ``stage_blocks`` (by ``depth``) for ``resnet``; a string where the
class itself cannot be built with that arch). ``MODELS``: the model types whose
``get_layer_depth`` hands the name to ``backbone.get_layer_depth(name, 'backbone.')``.
"""

'''


def write_archs(tables: dict) -> None:
    body = ARCHS_HEADER + "BACKBONES = " + pprint.pformat(tables["backbones"], width=99,
                                                          sort_dicts=True)
    body += "\n\nMODELS = " + pprint.pformat(tuple(tables["models"]), width=99) + "\n"
    OUT_ARCHS.write_text(body)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="folder with mmcv-lite and friends")
    parser.add_argument("--archs-only", action="store_true", help="write only the arch table")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    load_mmpretrain(args.site)
    write_archs(arch_tables())
    if args.archs_only:
        return 0
    data = record_configs()
    text = json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"
    OUT_JSON.write_bytes(gzip.compress(text.encode(), mtime=0))
    print(f"{len(data['trees'])} trees, {len(data['combos'])} combinations, "
          f"{len(data['skipped'])} skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
