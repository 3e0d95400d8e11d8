"""Which generation a config is written for, read from its keys.

Two generations of OpenMMLab configs describe the optimisation with different keys:

- MMSelfSup 0.x on mmcv 1.x: ``lr_config``, ``momentum_config``,
  ``optimizer_config``, ``runner`` (and ``fp16``);
- MMSelfSup 1.x / MMPretrain 1.x on MMEngine: ``optim_wrapper``,
  ``param_scheduler``, and ``train_cfg`` when it is a training loop (it has a
  ``type``, ``by_epoch``, ``max_epochs`` or ``max_iters``: 0.x configs also have a
  ``train_cfg``, the model's training options, often ``{}``).

A top-level ``optimizer`` (and ``custom_hooks``) is neutral: real MMEngine configs
define an ``optimizer`` variable and pass it into ``optim_wrapper``.
``generation_of(cfg)`` refuses a config with keys of both generations, naming the
keys: upstream, each generation's runner ignores the other's keys, so half of such
a config would silently do nothing.

``sniff_file`` reads a config file and its ``_base_`` chain WITHOUT running it (the
top-level assignments of ``.py`` files, the keys of ``.json`` / ``.yaml`` files), so
the faithful loader can be chosen before anything runs (``files.load_config``). It
also refuses, naming the file, what neither loader takes: a base from another
OpenMMLab package (``'mmcls::...'``) and new-style lazy-import configs (``with
read_base(): ...``, relative imports, and in MMEngine files any import of a module
outside Python's standard library, which MMEngine reads as a lazy-import config).
"""

from __future__ import annotations

import ast
import json
import os
import sys

from ..errors import ConfigError

MMCV1, MMENGINE = "mmcv1", "mmengine"
GENERATION_KEYS = {
    MMCV1: ("lr_config", "momentum_config", "optimizer_config", "runner", "fp16"),
    MMENGINE: ("optim_wrapper", "param_scheduler", "train_cfg"),
}
# the keys that make MMEngine's loader the one to read a file with (train_cfg is in 0.x
# configs too)
MMENGINE_FILE_KEYS = ("optim_wrapper", "param_scheduler")
_LOOP_KEYS = ("type", "by_epoch", "max_epochs", "max_iters")
NAMES = {MMCV1: "MMSelfSup 0.x / mmcv 1.x", MMENGINE: "MMEngine (MMSelfSup 1.x / MMPretrain 1.x)"}


def _sets(cfg: dict, key: str) -> bool:
    if key not in cfg or cfg[key] is None:
        return False
    if key == "train_cfg":  # a training loop, not a 0.x model's training options
        return isinstance(cfg[key], dict) and any(k in cfg[key] for k in _LOOP_KEYS)
    return True


def generation_of(cfg: dict, where: str = "the config") -> str | None:
    """``'mmcv1'``, ``'mmengine'`` or None (only neutral keys) for a loaded config dict;
    a ConfigError naming the keys when it has keys of both generations."""
    found = {gen: [k for k in names if _sets(cfg, k)] for gen, names in GENERATION_KEYS.items()}
    if found[MMCV1] and found[MMENGINE]:
        raise ConfigError(
            f"{where} mixes the two config generations: {', '.join(map(repr, found[MMCV1]))} "
            f"belong to {NAMES[MMCV1]}, {', '.join(map(repr, found[MMENGINE]))} to "
            f"{NAMES[MMENGINE]}. Each generation's runner ignores the other's keys, so part "
            "of it would silently do nothing; keep one generation's keys (docs/mmengine.md "
            "maps them key by key)")
    for gen in (MMENGINE, MMCV1):
        if found[gen]:
            return gen
    return None


def _lazy_reason(tree: ast.Module) -> str | None:
    """What makes a file a lazy-import config for either loader."""
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "read_base":
                    return "`with read_base():`"
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            return f"the relative import `from {'.' * node.level}{node.module or ''} import ...`"
    return None


def _third_party_import(tree: ast.Module) -> str | None:
    """An import of a module outside the standard library (MMEngine: a lazy-import config;
    mmcv 1.x runs it)."""
    for node in ast.walk(tree):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module
                 else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            top = name.split(".")[0]
            if name.startswith("mmengine.config") or top in sys.builtin_module_names or \
                    top in sys.stdlib_module_names:
                continue
            return f"`import {name}`"
    return None


def _base_list(value, path: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: _base_ must be a path or a list of paths, got {value!r}")
    return list(value)


def _py_keys(path: str, text: str) -> tuple[list[str], list[str] | None, str | None]:
    """Top-level assigned names, the literal ``_base_`` list (None: not literal) and the
    first import of a module outside the standard library."""
    try:
        tree = ast.parse(text, path)
    except SyntaxError as err:
        raise ConfigError(f"{path}:{err.lineno}: syntax error in config file: {err.msg}") from None
    lazy = _lazy_reason(tree)
    if lazy is not None:
        raise ConfigError(
            f"{path}: a new-style (lazy-import) MMEngine config ({lazy}) is not supported; "
            "write it in the classic form, with _base_ = [...] and type='Name' strings")
    keys, bases = [], []
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign))
                   else [])
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Store):
                    keys.append(name.id)
                    if name.id == "_base_" and isinstance(node, ast.Assign):
                        try:
                            bases = _base_list(ast.literal_eval(node.value), path)
                        except ValueError:
                            bases = None
    return keys, bases, _third_party_import(tree)


def _data_keys(path: str, text: str) -> tuple[list[str], list[str], None]:
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except ValueError as err:  # json.JSONDecodeError and yaml.YAMLError are ValueErrors
        raise ConfigError(f"{path}: invalid {os.path.splitext(path)[1][1:].upper()}: "
                          f"{err}") from None
    except Exception as err:  # noqa: BLE001 - yaml's own error types
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        return [], [], None
    bases = _base_list(data["_base_"], path) if "_base_" in data else []
    return list(data), bases, None


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file ({err.reason} at byte "
                          f"{err.start}); config files are UTF-8 Python, JSON or YAML") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read: {err.strerror or err}") from None


def sniff_file(path: str, _stack: tuple[str, ...] = ()) -> tuple[dict[str, str], list[str]]:
    """``({top-level key: the file that sets it}, [imports of modules outside the standard
    library, as 'file: import x'])`` over ``path`` and its ``_base_`` chain, read without
    running anything. A file whose ``_base_`` is not a literal contributes its own keys
    only (the loader reports anything wrong with it)."""
    if path in _stack or not os.path.isfile(path):
        return {}, []  # the loader reports cycles and missing files, naming them
    text = _read_text(path)
    if path.endswith(".py"):
        keys, bases, imported = _py_keys(path, text)
    elif path.endswith((".json", ".yaml", ".yml")):
        keys, bases, imported = _data_keys(path, text)
    else:
        return {}, []
    origin: dict[str, str] = {}
    imports = [f"{path}: {imported}"] if imported else []
    for base in bases or []:
        if "::" in base:
            package = base.split("::", 1)[0]
            raise ConfigError(
                f"{path}: _base_ {base!r} is a config of the package {package!r} (an "
                f"OpenMMLab codebase, read through MMEngine's package scope); bases from other "
                "packages are not loaded here: copy the settings you need into the file")
        base_path = os.path.normpath(os.path.join(os.path.dirname(path), base))
        base_origin, base_imports = sniff_file(base_path, _stack + (path,))
        origin.update(base_origin)
        imports += base_imports
    origin.update({k: path for k in keys if k != "_base_"})
    return origin, imports


def uses_mmengine_loader(path: str) -> bool:
    """Whether ``path`` is an MMEngine config file (its chain sets ``optim_wrapper`` or
    ``param_scheduler``); refuses one that MMEngine would read as a lazy-import config."""
    origin, imports = sniff_file(path)
    if not any(k in origin for k in MMENGINE_FILE_KEYS):
        return False
    if imports:
        raise ConfigError(
            f"{imports[0]}: MMEngine reads a config that imports a module outside Python's "
            "standard library as a new-style (lazy-import) config, which is not supported; "
            "remove the import (write type='Name' strings)")
    return True
