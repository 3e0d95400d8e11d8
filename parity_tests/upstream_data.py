"""The real upstream config files kept as test data, and MMEngine's view of each.

``data/upstream_configs/<dist>-<version>/`` holds every config file of the
MMSelfSup 0.11.0, MMSelfSup 1.0.0 and MMPretrain 1.2.0 wheels, unmodified;
``data/upstream_views.json`` what the real MMEngine 0.10.7 loads from each
``.py`` file. Both come from ``tools/upstream_configs.py``; the format is
described in ``data/upstream_configs/README.md``.

    from upstream_data import config_path, generation, load_views

    for relpath, view in load_views().items():
        if "error" in view:            # MMEngine cannot load it (mmcls:: base, ...)
            continue
        path = config_path(relpath)    # the file itself
        ow = view.get("optim_wrapper") # 1.x; 0.x views have "optimizer", "lr_config", ...

A view is ``{"error": "<Type>: <first line>"}`` (with ``"lazy_import": True``
when the file or a base is a new-style lazy-import config) or the config's
``default_scope`` / ``optim_wrapper`` / ``param_scheduler`` / ``train_cfg`` /
``auto_scale_lr`` / ``custom_hooks`` / ``optimizer`` (1.x), ``optimizer`` /
``optimizer_config`` / ``lr_config`` / ``momentum_config`` / ``runner`` /
``fp16`` / ``custom_hooks`` (0.x), and ``model`` facts, each only when present.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
CONFIG_DIR = DATA_DIR / "upstream_configs"
VIEWS_FILE = DATA_DIR / "upstream_views.json"
# The vendored dists, as the first path component of every relpath.
DISTS = ("mmselfsup-0.11.0", "mmselfsup-1.0.0", "mmpretrain-1.2.0")


def _decode(obj: dict):
    if len(obj) == 1:
        if "__tuple__" in obj:
            return tuple(obj["__tuple__"])
        if "__float__" in obj:
            return float(obj["__float__"])
    return obj  # {"__repr__": "..."} stays as it is: a value JSON could not hold


def load_views(*, decode: bool = True) -> dict[str, dict]:
    """``{relpath: view}`` for every upstream ``.py`` config, sorted by relpath.

    ``relpath`` is relative to ``CONFIG_DIR`` (``"mmselfsup-1.0.0/selfsup/..."``).
    With ``decode`` (the default) tuples come back as tuples and non-finite
    floats as floats; ``decode=False`` gives the JSON as stored. A fresh copy
    each call: mutate it freely.
    """
    text = VIEWS_FILE.read_text()
    return json.loads(text, object_hook=_decode) if decode else json.loads(text)


def config_path(relpath: str) -> Path:
    """The vendored config file of ``relpath`` (a key of ``load_views()``)."""
    return CONFIG_DIR / relpath


def generation(relpath: str) -> str:
    """``'0.x'`` (mmcv 1.x configs: MMSelfSup 0.11.0) or ``'1.x'`` (MMEngine configs)."""
    return "0.x" if relpath.startswith("mmselfsup-0.") else "1.x"
