"""``optax-selfsup``: command-line tools around a config file.

    optax-selfsup show CONFIG                       # the merged config as a dict
    optax-selfsup plot CONFIG --steps-per-epoch N [-o schedule.png]
    optax-selfsup parity CONFIG --steps-per-epoch N [--iters 60]

``plot`` draws the lr (and the momentum when ``momentum_config`` is set) per
iteration from optax_selfsup and from torch_ref overlaid, marks the warmup end
and the epoch boundaries, and prints the maximum deviation between the two.
``parity`` trains a small MMSelfSup-named parameter tree with both and prints
the largest parameter and lr deviations. Every command takes
``--cfg-options KEY=VALUE ...`` (mmcv's rules).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import ConfigError

# command -> (module, one-line help); each module has ``add_arguments(parser)`` and ``run(args)``
# and imports jax / torch only inside ``run`` so ``--help`` stays fast.
COMMANDS = {
    "show": ("show", "print the merged config"),
    "plot": ("plot", "plot lr / momentum schedules against torch_ref"),
    "parity": ("parity", "train a demo tree with both and compare"),
}


def _module(name: str):
    return importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optax-selfsup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _module(name).add_arguments(p)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _module(args.command).run(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
