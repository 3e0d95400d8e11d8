"""``load_config(path)``: a config file of either generation -> a plain dict.

The generation is read from the file's keys (and its bases') before anything runs
(``generation.py``); each generation is then loaded by its own faithful loader:

- MMSelfSup 0.x / mmcv 1.x files (and files with only neutral keys such as a
  dataset's base file): mmcv 1.7's rules, reimplemented in ``mmcv1_files.py``;
- MMEngine files (their chain sets ``optim_wrapper`` or ``param_scheduler``:
  MMSelfSup 1.x, MMPretrain 1.x): MMEngine's own ``Config``
  (the ``mmengine-lite`` package), so ``_base_`` merging, ``_delete_``, the
  ``_base_.x`` references of MMEngine configs and the rest are exactly upstream's.

A path that names no file is looked up among the recipes that ship with the
package (``optax_selfsup/configs``, the repository's ``configs/``): by its path
under ``configs/``, with or without ``.py`` (``resolve_config_path``). A file
that exists always wins.

Config files are Python and run with the user's rights: load only configs you trust.
"""

from __future__ import annotations

import os

from ..errors import ConfigError
from .generation import uses_mmengine_loader
from .mmcv1_files import load_mmcv1_config


def load_mmengine_config(path: str) -> dict:
    """MMEngine's ``Config.fromfile(path).to_dict()``, without importing the config's
    ``custom_imports`` (modules of the original codebase, not needed to read it)."""
    try:
        from mmengine.config import Config
    except ImportError as err:  # pragma: no cover - mmengine-lite is a dependency
        raise ConfigError(f"{path}: an MMEngine config needs the mmengine-lite package "
                          f"(pip install mmengine-lite): {err}") from None
    try:
        return Config.fromfile(path, import_custom_modules=False,
                               format_python_code=False).to_dict()
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - a config runs arbitrary Python
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ConfigError(f"{path}: MMEngine could not load this config: "
                          f"{type(err).__name__}: {message}") from None


PACKAGED_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "configs")
_EXTENSIONS = (".py", ".json", ".yaml", ".yml")


def _under_configs(path: str) -> str | None:
    """``path`` relative to a ``configs/`` folder: 'configs/selfsup/x.py' -> 'selfsup/x.py',
    'selfsup/x.py' -> itself; None for an absolute path or one that leaves the folder."""
    parts = [p for p in path.replace(os.sep, "/").split("/") if p not in ("", ".")]
    if os.path.isabs(path) or not parts or ".." in parts:
        return None
    if parts[0] == "configs" and len(parts) > 1:
        parts = parts[1:]
    return "/".join(parts)


def resolve_config_path(path: str | os.PathLike) -> str:
    """The absolute path of the config file ``path`` names, in this order: ``path`` itself
    (relative to the working directory), ``path + '.py'`` when ``path`` has no extension,
    then the recipes packaged with optax_selfsup by their path under ``configs/``
    ('configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py',
    'selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k'). A ConfigError says where it
    looked when none exists, and names a directory given as a config."""
    given = os.path.expanduser(os.fspath(path))
    if not given.strip() or "\0" in given:
        raise ConfigError(f"config path {os.fspath(path)!r}: give a config file")
    candidates = [given]
    if os.path.splitext(given)[1] not in _EXTENSIONS:
        candidates.append(given + ".py")
    inside = _under_configs(given)
    if inside is not None:
        packaged = os.path.join(PACKAGED_CONFIGS, *inside.split("/"))
        candidates.append(packaged)
        if os.path.splitext(packaged)[1] not in _EXTENSIONS:
            candidates.append(packaged + ".py")
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    other = next((c for c in candidates if os.path.exists(c)), None)
    if other is not None:
        what = "a directory" if os.path.isdir(other) else "not a regular file"
        raise ConfigError(f"config {os.fspath(path)!r}: {os.path.abspath(other)} is {what}, "
                          f"not a config file (.py, .json, .yaml)")
    looked = ", ".join(os.path.abspath(c) for c in candidates)
    shipped = "" if inside is None else f" (the recipes shipped with optax_selfsup: " \
        f"{PACKAGED_CONFIGS})"
    raise ConfigError(f"config file not found: {os.fspath(path)!r}; looked at {looked}{shipped}")


def load_config(path: str | os.PathLike) -> dict:
    """Load a config file (``.py``, ``.json``, ``.yaml``) of either generation into a plain
    dict (tuples stay tuples). A file whose chain sets ``optim_wrapper`` or
    ``param_scheduler`` is read by MMEngine's loader, any other by mmcv 1.x's rules; a
    lazy-import config and a base from another package are refused, naming the file.

    ``path`` is found as ``resolve_config_path`` says: a file relative to the working
    directory, else a recipe packaged with optax_selfsup by its path under ``configs/``
    (``oss.load_config('configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py')``
    works from any directory, and installed from a wheel)."""
    path = resolve_config_path(path)
    try:
        if uses_mmengine_loader(path):
            return load_mmengine_config(path)
        return load_mmcv1_config(path)
    except OSError as err:  # unreadable (permissions), a _base_ that is a folder, ...
        raise ConfigError(f"{err.filename or path}: cannot read this config "
                          f"({err.strerror or err})") from None
