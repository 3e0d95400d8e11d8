"""``optax-selfsup show``: print the config as loaded: ``_base_`` files merged, ``{{_base_.x}}``
references resolved, ``--cfg-options`` applied (mmcv 1.x's ``Config.fromfile`` rules)."""

from __future__ import annotations

from .common import add_config_arguments, load_cli_config


def run(args) -> int:
    import pprint

    pprint.pprint(load_cli_config(args), sort_dicts=False, width=100)
    return 0


def add_arguments(parser) -> None:
    add_config_arguments(parser, steps=False)
