"""Shared pieces of the command-line tools."""

from __future__ import annotations

from ..config import load_config, merge_options


def load_cli_config(args) -> dict:
    cfg = load_config(args.config)
    return merge_options(cfg, args.cfg_options) if args.cfg_options else cfg




def add_config_arguments(parser, *, steps=True) -> None:
    """CONFIG, --steps-per-epoch (optional) and --cfg-options, shared by every command."""
    parser.add_argument("config", help="an MMSelfSup / mmcv 1.x config file (.py, .json, .yaml)")
    if steps:
        parser.add_argument("--steps-per-epoch", type=int, default=None,
                            help="data loader length (required for EpochBasedRunner)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config keys, mmcv style (a.b=1 c=[1,2] d=(0.9,0.95))")
