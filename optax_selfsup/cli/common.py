"""Shared pieces of the command-line tools.

Nothing here imports jax, torch or matplotlib: ``--help`` must stay instant.
"""

from __future__ import annotations

import importlib

from ..config import load_config, merge_options

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


def load_cli_config(args) -> dict:
    cfg = load_config(args.config)
    return merge_options(cfg, args.cfg_options) if args.cfg_options else cfg


def add_config_arguments(parser, *, steps=True, steps_help=None) -> None:
    """CONFIG, --steps-per-epoch (optional) and --cfg-options, shared by every command."""
    parser.add_argument("config", help="an MMSelfSup / mmcv 1.x config file (.py, .json, .yaml)")
    if steps:
        parser.add_argument("--steps-per-epoch", type=int, default=None, metavar="N",
                            help=steps_help or "iterations per epoch, the data loader length "
                                               "(required for an EpochBasedRunner run)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config keys, mmcv style (a.b=1 c=[1,2] d=(0.9,0.95))")
