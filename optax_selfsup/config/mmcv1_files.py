"""MMSelfSup 0.x / mmcv 1.x config files -> plain dicts (SPEC section 7).

Faithful to mmcv 1.7's ``Config.fromfile(path)._cfg_dict.to_dict()``:

- ``.py`` files are executed; every top-level name not starting with ``__``
  that is not a module or a function is a key (mmcv keeps single-underscore
  names such as ``_lr``; ``_base_`` and ``_deprecation_`` are taken out).
  ``.json`` / ``.yaml`` load too.
- ``_base_`` (a path or a list, relative to the file) is loaded first; keys may
  not repeat among the bases; the child is merged in: dicts merge recursively
  unless the child dict has ``_delete_=True``, which replaces.
- ``{{_base_.a.b}}`` stands for the merged bases' value (a whole value, also inside
  lists and tuples; inside a string it is an error, where mmcv keeps a garbled string);
  ``{{ fileDirname }}``, ``{{ fileBasename }}``, ``{{ fileBasenameNoExtension }}`` and
  ``{{ fileExtname }}`` give this file's path parts as strings. mmcv pastes them
  into the source text, so a directory name with a quote in it runs as code; here
  they never enter the source (see docs/config-files.md).

Config files are Python and run with the user's rights: load only configs you trust
(a ``.json`` / ``.yaml`` file whose ``_base_`` is a ``.py`` file runs that file).
Every error names the file and the key.
"""

from __future__ import annotations

import json
import os
import re
import traceback
import types
import uuid
import warnings

from ..errors import ConfigError

BASE_KEY, DELETE_KEY = "_base_", "_delete_"
RESERVED_KEYS = ("filename", "text", "pretty_text")
_EXTENSIONS = (".py", ".json", ".yaml", ".yml")


def _predefined(text: str, path: str) -> tuple[str, dict]:
    """``{{ fileDirname }}`` & co. -> unique tokens; returns the text and {token: value}.

    mmcv pastes the values into the source text, so a directory name with a quote
    in it becomes code. Here the value never enters the source: a token stands in
    its place (inside a string literal it is replaced in the parsed strings; written
    bare in a ``.py`` file it is a variable holding the value as a string).
    """
    dirname, basename = os.path.dirname(path), os.path.basename(path)
    stem, ext = os.path.splitext(basename)
    values = dict(fileDirname=dirname, fileBasename=basename, fileBasenameNoExtension=stem,
                  fileExtname=ext)
    tokens = {}
    for key, value in values.items():
        pattern = r"\{\{\s*" + key + r"\s*\}\}"
        if re.search(pattern, text):
            token = f"__oss_{key}_{uuid.uuid4().hex[:8]}__"
            tokens[token] = value.replace("\\", "/")
            text = re.sub(pattern, token, text)
    return text, tokens


def _replace_tokens(value, tokens: dict):
    """Every token of ``_predefined`` inside the parsed strings (keys too) -> its value."""
    if isinstance(value, str):
        for token, text in tokens.items():
            value = value.replace(token, text)
        return value
    if isinstance(value, dict):
        return {_replace_tokens(k, tokens): _replace_tokens(v, tokens) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_replace_tokens(v, tokens) for v in value)
    return value


def _base_placeholders(text: str):
    """Replace each ``{{_base_.x.y}}`` by a unique quoted placeholder string."""
    placeholders = {}
    for var in sorted(set(re.findall(r"\{\{\s*_base_\.([\w\.]+)\s*\}\}", text))):
        token = f"_{var}_{uuid.uuid4().hex[:6]}"
        placeholders[token] = var
        text = re.sub(r"\{\{\s*_base_\." + re.escape(var) + r"\s*\}\}", f'"{token}"', text)
    return text, placeholders


def _execute(text: str, path: str, tokens: dict) -> dict:
    try:
        code = compile(text, path, "exec")
    except SyntaxError as err:
        raise ConfigError(f"{path}:{err.lineno}: syntax error in config file: {err.msg}") from None
    namespace: dict = {"__file__": path, "__name__": "__mmcv_config__", **tokens}
    try:
        exec(code, namespace)  # config files are trusted Python, as in mmcv
    except Exception as err:  # noqa: BLE001 - the file's own code failed
        line = next((f.lineno for f in reversed(traceback.extract_tb(err.__traceback__))
                     if f.filename == path), None)
        where = f"{path}:{line}" if line else path
        raise ConfigError(f"{where}: running the config file raised {type(err).__name__}: "
                          f"{err}") from None
    return {k: v for k, v in namespace.items()
            if not k.startswith("__") and not isinstance(v, (types.ModuleType,
                                                             types.FunctionType))}


def _parse(text: str, path: str, tokens: dict, placeholders: dict) -> dict:
    if path.endswith(".py"):
        return _execute(text, path, tokens)
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            hint = (" (a {{_base_.x}} placeholder stands for a whole value: write it without "
                    "quotes, e.g. \"lr\": {{_base_.lr}})" if placeholders else "")
            raise ConfigError(f"{path}:{err.lineno}: invalid JSON: {err.msg}{hint}") from None
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None


def _lookup(bases: dict, var: str, path: str):
    value = bases
    for part in var.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ConfigError(f"{path}: {{{{_base_.{var}}}}} does not exist in its base "
                              f"config(s) (no key {part!r})")
        value = value[part]
    return value


def _mentions(value, token: str) -> bool:
    """Whether ``token`` occurs in any string of the parsed ``value`` (keys too)."""
    if isinstance(value, str):
        return token in value
    if isinstance(value, dict):
        return any(_mentions(k, token) or _mentions(v, token) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_mentions(v, token) for v in value)
    return False


def _substitute(value, placeholders, bases, path):
    if isinstance(value, str) and value in placeholders:
        return _lookup(bases, placeholders[value], path)
    if isinstance(value, str):
        for token, var in placeholders.items():
            if token in value:
                _lookup(bases, var, path)  # a missing key is reported first
                shown = value.replace(f'"{token}"', f"{{{{_base_.{var}}}}}")
                raise ConfigError(
                    f"{path}: {{{{_base_.{var}}}}} is used inside the string {shown!r}; it "
                    "can only stand for a whole value (write it outside quotes)")
    if isinstance(value, dict):
        return {k: _substitute(v, placeholders, bases, path) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, placeholders, bases, path) for v in value)
    return value


def merge(child: dict, base, *, allow_list_keys: bool = False, where: str = "",
          path: str = "") -> dict:
    """mmcv ``_merge_a_into_b``: ``child`` wins; ``_delete_=True`` replaces a base dict."""
    out = list(base) if isinstance(base, list) else dict(base)
    for key, value in child.items():
        name = f"{where}.{key}" if where else str(key)
        if allow_list_keys and isinstance(out, list) and str(key).isdigit():
            index = int(key)
            if index >= len(out):
                raise ConfigError(f"{path}{name}: index {index} is past the end of the list "
                                  f"(length {len(out)})")
            out[index] = merge(value, out[index], allow_list_keys=True, where=name, path=path)
        elif isinstance(value, dict):
            value = dict(value)
            if key in out and not value.pop(DELETE_KEY, False):
                allowed = (dict, list) if allow_list_keys else dict
                if not isinstance(out[key], allowed):
                    raise ConfigError(
                        f"{path}{name}: a dict cannot be merged into the base value "
                        f"{out[key]!r} ({type(out[key]).__name__}); set {DELETE_KEY}=True to "
                        "replace it")
                out[key] = merge(value, out[key], allow_list_keys=allow_list_keys, where=name,
                                 path=path)
            else:
                out[key] = value
        else:
            out[key] = value
    return out


def _load(path: str, stack: tuple[str, ...]) -> dict:
    if path in stack:
        chain = " -> ".join(stack + (path,))
        raise ConfigError(f"cycle of _base_ files: {chain}")
    if not os.path.isfile(path):
        where = f" (a _base_ of {stack[-1]})" if stack else ""
        raise ConfigError(f"config file not found: {path}{where}")
    if os.path.splitext(path)[1] not in _EXTENSIONS:
        raise ConfigError(f"{path}: only {', '.join(_EXTENSIONS)} config files are supported")
    with open(path, encoding="utf-8") as f:
        text, tokens = _predefined(f.read(), path)
    text, placeholders = _base_placeholders(text)
    cfg = _parse(text, path, tokens, placeholders)
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a config file must define a mapping, got "
                          f"{type(cfg).__name__}")
    cfg = _replace_tokens(cfg, tokens)
    deprecation = cfg.pop("_deprecation_", None)
    if deprecation is not None:
        message = f"the config file {path} will be deprecated in the future."
        if isinstance(deprecation, dict) and "expected" in deprecation:
            message += f" Please use {deprecation['expected']} instead."
        warnings.warn(message, DeprecationWarning, stacklevel=3)
    for key in cfg:
        if key in RESERVED_KEYS:
            raise ConfigError(f"{path}: {key!r} is reserved and cannot be a config key")
    if DELETE_KEY in cfg:
        raise ConfigError(f"{path}: a top-level {DELETE_KEY} has no dict to replace; put "
                          f"{DELETE_KEY}=True inside the dict that replaces its base")
    if BASE_KEY not in cfg:
        used = [var for token, var in placeholders.items() if _mentions(cfg, token)]
        if used:  # (a placeholder in a comment is harmless: mmcv ignores it too)
            raise ConfigError(f"{path}: uses {{{{_base_.{used[0]}}}}} but has no _base_")
        return cfg
    base_files = cfg.pop(BASE_KEY)
    base_files = base_files if isinstance(base_files, list) else [base_files]
    bases: dict = {}
    origin: dict = {}
    for name in base_files:
        if not isinstance(name, str):
            raise ConfigError(f"{path}: _base_ entries must be paths, got {name!r}")
        base_path = os.path.normpath(os.path.join(os.path.dirname(path), name))
        loaded = _load(base_path, stack + (path,))
        duplicates = sorted(bases.keys() & loaded.keys())
        if duplicates:
            raise ConfigError(f"{path}: key(s) {duplicates} appear in more than one _base_ "
                              f"({origin[duplicates[0]]} and {base_path}); mmcv forbids that")
        bases.update(loaded)
        origin.update({k: base_path for k in loaded})
    cfg = _substitute(cfg, placeholders, bases, path)
    return merge(cfg, bases, path=f"{path}: ")


def load_mmcv1_config(path: str) -> dict:
    """Load an mmcv 1.x style config file (an absolute path) into a plain dict (tuples
    stay tuples)."""
    return _load(path, ())
