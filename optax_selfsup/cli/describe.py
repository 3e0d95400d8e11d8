"""``optax-selfsup describe``: what every parameter of a built-in model gets from the config.

One row per parameter, by its MMSelfSup (torch) name: base lr and momentum (what
the schedules start from, after the parameter-wise rules, layer decay and the
optimizer's defaults), weight decay, and the flags ``lars_exclude`` (LARS leaves
the tensor's lr unscaled), ``fix_lr`` (SimSiamHook keeps its lr) and
``frozen_until`` (the gradient is dropped at updates before this iteration:
``optimizer_config.frozen_layers_cfg``, or SwAVHook's in MMEngine configs).

For an MMEngine config (MMSelfSup 1.x, MMPretrain) the rows are MMEngine's param
groups, in the order its constructor builds them (``group``: a module's own
parameters before its submodules'), with the keys the constructor copies into
them (``lr_mult``, ``decay_mult``, ``layer_id``, ``lr_scale``), after a line
naming the optimizer wrapper, the optimizer and the constructor. Norm layers and
depthwise convolutions are found as ``build_optimizer`` finds them without
``module=`` (docs/mmengine.md). Parameters are only shaped, never computed, so
this is quick for any model.
"""

from __future__ import annotations

import warnings

from ..errors import ConfigError, choices
from .common import add_config_arguments, load_cli_config

DEMO = "demo"


def model_names() -> list[str]:
    """'demo' and the Flax models of optax_selfsup.models (importing them imports jax)."""
    from ..models import MODELS

    return [DEMO, *MODELS]


def model_params(name: str):
    """The parameter tree of a built-in model as shapes (``jax.ShapeDtypeStruct`` leaves)."""
    import jax

    if name == DEMO:
        import numpy as np

        from ..demo import DEMO_MODEL
        from ..names import nest_names

        return nest_names({k: jax.ShapeDtypeStruct(s, np.float32) for k, s in DEMO_MODEL.items()})
    from ..models import MODELS, init_model

    if name not in MODELS:
        raise ConfigError(f"--model {name!r} is not a built-in model; valid models are "
                          f"{choices(model_names())}")
    return jax.eval_shape(lambda: init_model(name)[1])


def run(args) -> int:
    from .. import describe, format_table

    cfg = load_cli_config(args)
    params = model_params(args.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = describe(cfg, params)
    if rows and "group" in rows[0]:  # an MMEngine config: its param groups, in its order
        rows = sorted(rows, key=lambda r: r["group"])
        print(_mmengine_header(cfg, rows))
    print(format_table(rows))
    for w in caught:  # e.g. paramwise rules that match no parameter of this model
        print(f"warning: {w.message}")
    return 0


def _mmengine_header(cfg: dict, rows: list[dict]) -> str:
    ow = cfg.get("optim_wrapper") or {}
    opt = ow.get("optimizer") or {}
    constructor = ow.get("constructor", "DefaultOptimWrapperConstructor")
    count = len({r["group"] for r in rows})
    extra = [f"{k}={ow[k]}" for k in ("loss_scale", "accumulative_counts", "clip_grad")
             if k in ow]
    return (f"{count} param group(s) of {len(rows)} parameters, as {constructor} builds them; "
            f"{str(ow.get('type', 'OptimWrapper')).rpartition('.')[2]}"
            f"{' (' + ', '.join(extra) + ')' if extra else ''}, {opt.get('type', '?')}")


def add_arguments(parser) -> None:
    add_config_arguments(parser, steps=False)
    parser.add_argument("--model", default=DEMO, metavar="NAME",
                        help="the parameter tree to describe: 'demo' (default; a small tree "
                             "named like MMSelfSup's ResNet/ViT backbones, necks and heads) or "
                             "a Flax model of optax_selfsup.models (simclr_resnet, byol_resnet, "
                             "mae_vit, ...); an unknown name lists the valid ones")
