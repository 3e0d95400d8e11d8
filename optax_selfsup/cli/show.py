"""``optax-selfsup show``: the merged config as a dict."""

from __future__ import annotations

from .common import add_config_arguments, load_cli_config


def run(args) -> int:
    import pprint

    pprint.pprint(load_cli_config(args), sort_dicts=False, width=100)
    return 0




def add_arguments(parser) -> None:
    add_config_arguments(parser, steps=False)
