"""Reading MMSelfSup 0.x / mmcv 1.x config files into plain dicts (SPEC section 7).

Config files are Python and run with the user's rights: load only configs you trust.
"""

from __future__ import annotations

import os
import types

from .errors import ConfigError


def _read_python(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        code = compile(source, path, "exec")
    except SyntaxError as err:
        raise ConfigError(f"{path}:{err.lineno}: syntax error in config file: {err.msg}") from None
    namespace: dict = {"__file__": path, "__name__": "__config__"}
    exec(code, namespace)
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and not isinstance(v, types.ModuleType)
            and not isinstance(v, (types.FunctionType, type))}


def load_config(path: str | os.PathLike) -> dict:
    """Load a config file into a plain dict."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    return _read_python(path)
