"""MMPretrain's ``get_layer_depth`` methods, read from its 1.2.0 files, bound to the toy model.

``LearningRateDecayOptimWrapperConstructor`` asks the model for ``get_layer_depth(name)``;
``ImageClassifier`` (``models/classifiers/image.py``) and ``BaseSelfSupervisor``
(``models/selfsup/base.py``) hand it to ``backbone.get_layer_depth(name, 'backbone.')``. Both
methods are read here with ``ast`` from the installed files (searched by class name through the
class's bases, so ``MAEViT`` finds ``VisionTransformer``'s) and compiled unchanged, with the
upstream file as their filename; the model's method is bound to the reference model and the
backbone's to its ``backbone`` module.

The one stand-in is what a backbone's ``__init__`` derives from its config, restricted to the
attributes these methods read: ``num_layers`` (ViT, BEiT: ``arch_settings['num_layers']``),
``depths`` (Swin, ConvNeXt, MixMIM: ``arch_settings['depths']``) and ``stage_blocks`` (ResNet:
``arch_settings[depth][1][:num_stages]``). The arch tables themselves (``arch_zoo`` /
``arch_settings``) and the default ``arch`` are read from the same upstream class, so
``arch='base'`` gives 12 layers because upstream says so. An ``arch`` given as a dict is used as
the settings, as upstream does. Archs that a class adds in its ``__init__`` (``MoCoV3ViT``'s
``'mocov3-small'``) are not in the class body: give such an ``arch`` as a dict.
"""

from __future__ import annotations

import ast
import builtins
import functools
import math
import types
from pathlib import Path

from torch import nn

from .upstream import mmpretrain_root

_SEARCH_DIRS = ("models/classifiers", "models/selfsup", "models/backbones")
_TABLES = ("arch_zoo", "arch_settings")


@functools.cache
def _class_index() -> dict[str, tuple[Path, ast.ClassDef]]:
    root = mmpretrain_root()
    index: dict[str, tuple[Path, ast.ClassDef]] = {}
    for sub in _SEARCH_DIRS:
        for path in sorted((root / sub).glob("*.py")):
            for node in ast.parse(path.read_text(), str(path)).body:
                if isinstance(node, ast.ClassDef):
                    index.setdefault(node.name, (path, node))
    return index


def _base_names(cls: ast.ClassDef) -> list[str]:
    return [b.id if isinstance(b, ast.Name) else b.attr for b in cls.bases
            if isinstance(b, ast.Name | ast.Attribute)]


def _members(cls_name: str, member: str):
    """Every definition of ``member`` (method or class attribute) in ``cls_name`` and its bases,
    nearest first (bases searched depth first, left to right)."""
    found = _class_index().get(cls_name)
    if found is None:
        return
    path, cls = found
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == member:
            yield path, node
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == member for t in node.targets):
            yield path, node
    for base in _base_names(cls):
        yield from _members(base, member)


def _lookup(cls_name: str, member: str) -> tuple[Path, ast.AST] | None:
    return next(_members(cls_name, member), None)


def _compile_function(path: Path, node: ast.FunctionDef) -> types.FunctionType:
    namespace = {"math": math, "__builtins__": builtins}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[node.name]


class _Names(dict):
    """Evaluation scope for an arch table: unknown names (block classes) evaluate to their name."""

    def __missing__(self, key):
        return key


def _table(cls_name: str) -> dict | None:
    for member in _TABLES:
        hit = _lookup(cls_name, member)
        if hit is not None:
            path, node = hit
            code = compile(ast.Expression(node.value), str(path), "eval")
            scope = _Names({f.__name__: f for f in (dict, int, float, round, list, tuple)})
            return eval(code, {"__builtins__": {}}, scope)  # noqa: S307
    return None


def _init_default(cls_name: str, arg: str):
    for _, init in _members(cls_name, "__init__"):
        args = init.args
        positional = args.posonlyargs + args.args
        defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]],
                            args.defaults))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d})
        if arg in defaults:
            return ast.literal_eval(defaults[arg])
    return None


def backbone_attributes(backbone_cfg: dict) -> dict:
    """What the backbone's ``__init__`` would set that ``get_layer_depth`` reads."""
    cls_name = backbone_cfg["type"].split(".")[-1]
    table = _table(cls_name)
    if table is None:
        return {}
    if all(isinstance(k, int) for k in table):  # ResNet: {depth: (block, stage_blocks)}
        depth = backbone_cfg["depth"]
        return {"stage_blocks": tuple(table[depth][1])[:backbone_cfg.get("num_stages", 4)]}
    arch = backbone_cfg.get("arch", _init_default(cls_name, "arch"))
    if isinstance(arch, str):
        settings = table[arch] if arch in table else table[arch.lower()]
    else:
        settings = arch
    return {k: settings[k] for k in ("num_layers", "depths") if k in settings}


def bind_layer_depth(model: nn.Module, model_cfg: dict) -> bool:
    """Give ``model`` upstream's ``get_layer_depth`` for ``model_cfg`` (``type``, ``backbone``).

    False (nothing bound) when mmpretrain has no such model class with the method: then the
    layer-decay constructor raises its own NotImplementedError, as upstream for such a model.
    """
    model_type = (model_cfg.get("type") or "ImageClassifier").split(".")[-1]
    hit = _lookup(model_type, "get_layer_depth")
    if hit is None:
        return False
    model.get_layer_depth = types.MethodType(_compile_function(*hit), model)
    backbone_cfg = model_cfg.get("backbone")
    if backbone_cfg is None:
        return True
    hit = _lookup(backbone_cfg["type"].split(".")[-1], "get_layer_depth")
    if hit is None:  # upstream's model method then raises NotImplementedError
        return True
    if not hasattr(model, "backbone"):
        model.backbone = nn.Module()  # no backbone parameters: only the facts
    backbone = model.backbone
    for key, value in backbone_attributes(backbone_cfg).items():
        setattr(backbone, key, value)
    backbone.get_layer_depth = types.MethodType(_compile_function(*hit), backbone)
    return True


def upstream_layer_depth(model_cfg: dict):
    """``name -> (layer_id, max_id)`` by upstream's methods for ``model_cfg``, without a run
    (for checking a port's depth rules on many names)."""
    model = nn.Module()
    if not bind_layer_depth(model, model_cfg):
        raise ValueError(f"mmpretrain has no get_layer_depth for a {model_cfg.get('type')} model")
    return model.get_layer_depth
