"""``load_config(path)``: a config file of either generation -> a plain dict.

The generation is read from the file's keys (and its bases') before anything runs
(``generation.py``); each generation is then loaded by its own faithful loader:

- MMSelfSup 0.x / mmcv 1.x files (and files with only neutral keys such as a
  dataset's base file): mmcv 1.7's rules, reimplemented in ``mmcv1_files.py``;
- MMEngine files (their chain sets ``optim_wrapper`` or ``param_scheduler``:
  MMSelfSup 1.x, MMPretrain 1.x): MMEngine's own ``Config``
  (the ``mmengine-lite`` package), so ``_base_`` merging, ``_delete_``, the
  ``_base_.x`` references of MMEngine configs and the rest are exactly upstream's.

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


def load_config(path: str | os.PathLike) -> dict:
    """Load a config file (``.py``, ``.json``, ``.yaml``) of either generation into a plain
    dict (tuples stay tuples). A file whose chain sets ``optim_wrapper`` or
    ``param_scheduler`` is read by MMEngine's loader, any other by mmcv 1.x's rules; a
    lazy-import config and a base from another package are refused, naming the file."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if uses_mmengine_loader(path):
        return load_mmengine_config(path)
    return load_mmcv1_config(path)
