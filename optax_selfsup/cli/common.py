"""Shared pieces of the command-line tools.

Nothing here imports jax, torch or matplotlib: ``--help`` must stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os

from ..config import load_config, merge_options
from ..errors import ConfigError

# optional dependency -> the extra of optax_selfsup that installs it
EXTRAS = {"torch": "torch", "torch_ref": "torch", "matplotlib": "plot"}


class MissingExtra(Exception):
    """An optional dependency is not installed; the message says which extra installs it."""


def require(module: str, purpose: str):
    """``import module``, or a ``MissingExtra`` naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = (err.name or module).split(".")[0]
        if top not in EXTRAS:
            raise
        raise MissingExtra(f"{purpose} needs {top}, which is not installed: "
                           f"pip install 'optax_selfsup[{EXTRAS[top]}]'") from None


MAX_SEED = 2**32 - 1


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        shown = repr(text) if value is None else text
        raise argparse.ArgumentTypeError(f"{shown} is not a positive int")
    return value


def seed(text: str) -> int:
    """argparse type: an int in 0..2**32-1 (numpy's and jax's seeds)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text} is not an int in 0..{MAX_SEED}")
    return value


def tolerance(text: str) -> float:
    """argparse type: a finite float >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number >= 0")
    return value


def check_output_file(path: str, flag: str, formats: dict | None = None) -> None:
    """``path`` can be written: its folder exists and is writable, it is not a folder, and
    (with ``formats``, extension -> description) its extension is one of them. Writes
    nothing that stays."""
    import tempfile

    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise ConfigError(f"{flag} {path}: {full} is a directory; give a file name such as "
                          f"{os.path.join(path, 'schedule.png')}")
    folder = os.path.dirname(full)
    if not os.path.exists(folder):
        raise ConfigError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise ConfigError(f"{flag} {path}: {folder} is not a directory")
    if formats is not None:
        ext = os.path.splitext(full)[1]
        valid = ", ".join(f"'.{k}'" for k in sorted(formats))
        if not ext:
            raise ConfigError(f"{flag} {path}: no file extension to tell the format (matplotlib "
                              f"would write {path}.png); use one of {valid}")
        if ext[1:].lower() not in formats:
            raise ConfigError(f"{flag} {path}: {ext!r} is not a format matplotlib writes; use "
                              f"one of {valid}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".optax_selfsup-check-", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ConfigError(f"{flag} {path}: cannot write in {folder} ({err.strerror or err})"
                          ) from None


def load_cli_config(args) -> dict:
    cfg = load_config(args.config)
    return merge_options(cfg, args.cfg_options) if args.cfg_options else cfg


def add_config_arguments(parser, *, steps=True, steps_help=None) -> None:
    """CONFIG, --steps-per-epoch (optional) and --cfg-options, shared by every command."""
    parser.add_argument("config", help="an MMSelfSup / mmcv 1.x config file (.py, .json, "
                                       ".yaml), or a recipe shipped with optax_selfsup by its "
                                       "path under configs/ (the .py may be left out)")
    if steps:
        parser.add_argument("--steps-per-epoch", type=positive_int, default=None, metavar="N",
                            help=steps_help or "iterations per epoch, the data loader length "
                                               "(required for an EpochBasedRunner run)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config keys, mmcv style (a.b=1 c=[1,2] d=(0.9,0.95))")


# what the MMEngine reference (torch_ref.mmengine) runs: module -> (distribution, version pin)
MMENGINE_REFERENCE = {"torch": ("torch", None), "cv2": ("opencv-python-headless", None),
                      "mmengine": ("mmengine-lite", "0.10.7"),
                      "mmpretrain": ("mmpretrain", "1.2.0")}


def require_mmengine_reference(purpose: str) -> None:
    """The real MMEngine with MMPretrain's files is installed (found without importing it), or
    a ``MissingExtra`` naming what is missing and the extra that installs it."""
    import importlib.metadata
    import importlib.util

    missing = []
    for module, (dist, pin) in MMENGINE_REFERENCE.items():
        if module == "mmpretrain":  # read from its files, never imported (it needs mmcv)
            try:
                version = importlib.metadata.version("mmpretrain")
            except importlib.metadata.PackageNotFoundError:
                version = None
        else:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            version = _version_of(module) if found else None
            if found and version is None:
                version = pin or "?"  # importable, from a distribution of another name
        if version is None:
            missing.append(f"{dist} (not installed)")
        elif pin is not None and version not in (pin, "?"):
            missing.append(f"{dist}=={pin} (found {version})")
    if missing:
        raise MissingExtra(f"{purpose} compares with the real MMEngine, which needs "
                           f"{', '.join(missing)}: pip install 'optax_selfsup[mmengine-ref]'")


def _version_of(module: str) -> str | None:
    import importlib.metadata

    for dist in importlib.metadata.packages_distributions().get(module, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
