"""``optax-selfsup``: command-line tools around an MMSelfSup / mmcv 1.x config file.

    optax-selfsup show CONFIG                  # the merged config as a dict
    optax-selfsup describe CONFIG [--model M]  # lr, weight decay, momentum... per parameter
    optax-selfsup parity CONFIG                # train a demo tree with both libraries: PASS/FAIL
    optax-selfsup plot CONFIG -o lr.png        # the schedules, and their deviation from torch_ref
    optax-selfsup train CONFIG                 # train a small Flax model, then a linear probe

Every command takes ``--cfg-options KEY=VALUE ...`` (mmcv's rules) and has its own
``--help``. CONFIG is a file, or a recipe shipped with optax_selfsup by its path
under configs/ (configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py).
Errors are one line on stderr. Exit status: 0 success, 1 a parity check failed,
2 a bad argument, config or file, or a missing optional dependency (the message
names the pip extra), 3 an unexpected error (--debug shows its traceback),
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import ConfigError
from .common import MissingExtra

# command -> (module, one-line help); each module has ``add_arguments(parser)`` and ``run(args)``
# and imports jax / torch only inside ``run`` so ``--help`` stays fast.
COMMANDS = {
    "show": ("show", "print the merged config"),
    "describe": ("describe", "per-parameter lr, weight decay, momentum, LARS/fix_lr/frozen flags"),
    "plot": ("plot", "plot the lr / momentum schedules and their deviation from torch_ref"),
    "parity": ("parity", "train a demo tree with optax_selfsup and torch_ref; PASS or FAIL"),
    "train": ("train", "train a small model with the config's optimizer, then a linear probe"),
}


def _module(name: str):
    return importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")


DEBUG_HELP = "on an error, show the Python traceback instead of the one-line message"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optax-selfsup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=_module(name).__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _module(name).add_arguments(p)
        # also after the command; SUPPRESS keeps a --debug given before it
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help=DEBUG_HELP)
    return parser


def main(argv=None) -> int:
    """Run one command; every error is one line on stderr (see the exit statuses above)."""
    args = build_parser().parse_args(argv)
    try:
        return _module(args.command).run(args)
    except BrokenPipeError:  # output piped into `head`: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes it at exit
        return 0
    except (ConfigError, MissingExtra) as err:
        if args.debug:
            raise
        lines = [line.strip() for line in str(err).strip().splitlines()]  # e.g. YAML's
        print(f"error: {' '.join(line for line in lines if line)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last resort: one line, not a traceback
        if args.debug:
            raise
        text = str(err).strip().splitlines()
        print(f"error: {type(err).__name__}: {text[0] if text else ''} (an unexpected error; "
              f"run again with --debug for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
