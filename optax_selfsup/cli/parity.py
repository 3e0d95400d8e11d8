"""``optax-selfsup parity``: train a demo tree with optax_selfsup and torch_ref, compare."""

from __future__ import annotations

from .common import add_config_arguments, load_cli_config


def run(args) -> int:
    from ..demo import run_parity

    cfg = load_cli_config(args)
    result = run_parity(cfg, args.steps_per_epoch, args.iters)
    print(f"params: max |optax_selfsup - torch_ref| / max(1, |p|) = {result['param']:.3g} "
          f"after {result['iters']} iterations")
    if result["lr"] is not None:
        print(f"lr: max relative deviation per parameter = {result['lr']:.3g}")
    return 0




def add_arguments(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--iters", type=int, default=60, help="iterations to train")
