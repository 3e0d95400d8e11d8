"""Train a small Flax model with the optimizer, schedules and hooks of CONFIG.

    optax-selfsup train CONFIG [--epochs 2] [--steps-per-epoch 20] [--work-dir DIR]
                        [--stop-after EPOCH] [--resume] [--cfg-options KEY=VALUE ...]

The model follows the config's algorithm (SimCLR, BYOL, MoCo v1/v2, SwAV,
SimSiam, BarlowTwins, rotation prediction: small ResNets; MAE: tiny ViT;
SimMIM: tiny Swin; ViT fine-tuning configs: a ViT classifier; configs naming no
algorithm: the SimCLR demo model), named like MMSelfSup's so the config's
paramwise regexes select the same tensors. The data
is a generated 10-class image dataset (no download). The config's run is
fitted onto --epochs x --steps-per-epoch iterations (the notes say how). Writes
WORK_DIR/log.json (one JSON record per logged iteration), WORK_DIR/config.json
and orbax checkpoints in WORK_DIR/checkpoints/; ends with a linear probe on the
frozen backbone's features. See docs/training.md.

Every setting, the work dir (a writable directory) and its checkpoints
(--resume needs one, a new run refuses one) are checked before jax is imported:
a bad one fails at once and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os

from .common import (
    MissingExtra,
    add_config_arguments,
    load_cli_config,
    positive_int,
    seed,
)


def run(args) -> int:
    from ..training.loop import TrainSettings, check_writable_dir, preflight, train

    settings = TrainSettings(
        config_path=args.config, cfg=load_cli_config(args), work_dir=args.work_dir,
        epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
        image_size=args.image_size, seed=args.seed, model=args.model, resume=args.resume,
        log_interval=args.log_interval, checkpoint_interval=args.checkpoint_interval,
        stop_after=args.stop_after, probe=args.probe, progress=args.progress)
    preflight(settings)  # before jax: a bad setting fails at once, leaving nothing behind
    if args.compile_cache is not None and args.compile_cache.lower() != "none":
        check_writable_dir(args.compile_cache, "--compile-cache")
    try:
        import jax
        import orbax.checkpoint  # noqa: F401
        if args.progress:
            import rich  # noqa: F401
    except ImportError as err:
        raise MissingExtra(f"train needs {err.name}, which is not installed: pip install "
                           f"optax_selfsup (it depends on orbax-checkpoint and rich)") from None
    cache = args.compile_cache
    if cache is None:  # a cache the user set up for jax (JAX_COMPILATION_CACHE_DIR) wins
        cache = "none" if jax.config.jax_compilation_cache_dir else \
            os.path.join(args.work_dir, "jax_cache")
    with _compile_cache(None if cache.lower() == "none" else cache):
        train(settings)
    return 0


@contextlib.contextmanager
def _compile_cache(directory):
    """JAX's persistent compilation cache in ``directory`` for the run (every compiled
    function, however short its compile), the previous settings restored afterwards."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    keys = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
            "jax_persistent_cache_min_entry_size_bytes")
    if directory is None:
        yield
        return
    before = {k: getattr(jax.config, k) for k in keys}
    for key, value in zip(keys, (os.path.abspath(directory), 0.0, 0)):
        jax.config.update(key, value)
    compilation_cache.reset_cache()  # jax reads the settings once, at its first compile
    try:
        yield
    finally:
        for key, value in before.items():
            jax.config.update(key, value)
        compilation_cache.reset_cache()


def add_arguments(parser) -> None:
    add_config_arguments(parser, steps=False)
    parser.add_argument("--epochs", type=positive_int, default=2, metavar="E",
                        help="epochs to train; replaces runner.max_epochs and the config's "
                             "schedules are fitted onto this run (default: 2)")
    parser.add_argument("--steps-per-epoch", type=positive_int, default=20, metavar="N",
                        help="iterations per epoch (the data loader length); the generated "
                             "dataset has steps-per-epoch x batch-size images (default: 20)")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="B",
                        help="images per iteration (default: 64)")
    parser.add_argument("--work-dir", default="work_dirs/train",
                        help="where log.json, config.json and checkpoints/ go "
                             "(default: work_dirs/train)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest checkpoint in --work-dir (same settings)")
    parser.add_argument("--stop-after", type=positive_int, default=None, metavar="EPOCH",
                        help="stop after this epoch as if interrupted (the schedules still "
                             "cover --epochs); continue later with --resume")
    parser.add_argument("--model", default=None,
                        help="model to train (simclr_resnet, byol_resnet, mocov2_resnet, "
                             "swav_resnet, mae_vit, simmim_swin, ...; an unknown name lists "
                             "them all); default: from the config's model.type, its "
                             "optimizer or its file name")
    parser.add_argument("--image-size", type=positive_int, default=16,
                        help="side of the generated square images, at least 8; a multiple "
                             "of 4 for the ViTs and of 16 for simmim_swin (default: 16)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of the model init, dataset, order and augmentations")
    parser.add_argument("--log-interval", type=positive_int, default=10,
                        help="log every this many iterations and at each epoch end "
                             "(default: 10)")
    parser.add_argument("--checkpoint-interval", type=positive_int, default=1, metavar="EPOCHS",
                        help="save a checkpoint every this many epochs and at the end "
                             "(default: 1)")
    parser.add_argument("--compile-cache", default=None, metavar="DIR",
                        help="JAX persistent compilation cache, so a resumed or repeated run "
                             "skips compiling ('none' to disable; default: "
                             "JAX_COMPILATION_CACHE_DIR if set, else WORK_DIR/jax_cache)")
    parser.add_argument("--no-probe", dest="probe", action="store_false",
                        help="skip the linear probe at the end")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar (the log lines are still printed)")
