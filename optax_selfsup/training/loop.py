"""The training loop of ``optax-selfsup train``: a config, a small model, a short run.

Per iteration ``it`` (global, from 0), in mmcv's order:

1. the batch: images ``batch_indices(seed, it, ...)`` of the generated dataset,
   augmented inside the compiled step with the key ``fold_in(key(seed), it)``;
2. the loss of the model on it (times ``oss.loss_scale(opt_state)`` for fp16
   configs), its gradient, and ``oss.update_and_apply`` (``tx.update`` and
   ``optax.apply_updates`` in one step); ``tx = oss.build_optimizer(cfg, params,
   steps_per_epoch=N)`` does every schedule, parameter group, clip,
   accumulation micro-step and loss-scale decision inside;
   SwAV's prototypes are normalised before the forward pass (``task.prepare_params``);
3. BYOL: the target network's momentum update when ``oss.has_updated``;
4. logging (``log.py``) and, at the end of every ``checkpoint_interval``-th
   epoch, an orbax checkpoint (``checkpoints.py``).

Params, model state and optimizer state are donated to the step. Nothing in the
step depends on where the run started, so a run resumed from a checkpoint
continues bit for bit as the uninterrupted run. At the end a linear probe
(``probe.py``) measures the frozen backbone's features.

``grad_norm`` is what the optimizer hook logs when the config clips gradients
(the norm of the accumulated gradient before clipping); otherwise the L2 norm
of this iteration's (unscaled) gradient.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from ..errors import ConfigError


@dataclasses.dataclass
class TrainSettings:
    config_path: str | None
    cfg: dict
    work_dir: str
    epochs: int = 2
    steps_per_epoch: int = 20
    batch_size: int = 64
    image_size: int = 16
    seed: int = 0
    model: str | None = None
    resume: bool = False
    log_interval: int = 10
    checkpoint_interval: int = 1
    stop_after: int | None = None  # epochs; as if the job were interrupted there
    probe: bool = True
    probe_test_size: int = 1000
    progress: bool = True


def _first_leaf(tree):
    import jax

    leaves = jax.tree.leaves(tree)
    return leaves[0] if leaves else None


def _host_hparams(opt_state) -> dict:
    """lr (first parameter), momentum, loss scale and the lr of each distinct group."""
    import optax_selfsup as oss

    hp = oss.current_hparams(opt_state)
    out = {"lr": float(_first_leaf(hp["lr"]))}
    if hp.get("momentum") is not None:
        out["momentum"] = float(_first_leaf(hp["momentum"]))
    if "loss_scale" in hp:
        out["loss_scale"] = float(hp["loss_scale"])
    groups = oss.group_values(hp["lr"]) if hasattr(oss, "group_values") else {}
    if len(groups) > 1:
        out["lr_groups"] = groups
    return out


def _make_step(task, tx, fp16: bool):
    import jax
    import jax.numpy as jnp
    import optax

    import optax_selfsup as oss

    def step(params, model_state, opt_state, images, labels, key, target_momentum):
        scale = oss.loss_scale(opt_state) if fp16 else jnp.float32(1.0)
        if task.prepare_params is not None:  # SwAV: prototypes normalised in place
            params = task.prepare_params(params)

        def objective(p):
            loss, new_state = task.loss(p, model_state, images, labels, key)
            return loss * scale.astype(loss.dtype), (loss, new_state)

        grads, (loss, new_state) = jax.grad(objective, has_aux=True)(params)
        # tx.update + optax.apply_updates, with the params written inside the optimizer's
        # step: an accumulate-only micro-step touches only the accumulator
        params, opt_state = oss.update_and_apply(tx, grads, opt_state, params)
        hp = oss.current_hparams(opt_state)
        grad_norm = hp["grad_norm"] if "grad_norm" in hp else optax.tree.norm(grads) / scale
        updated = oss.has_updated(opt_state)
        if task.after_update is not None:
            moved = task.after_update(new_state, params, target_momentum)
            new_state = jax.tree.map(lambda a, b: jnp.where(updated, a, b), moved, new_state)
        return params, new_state, opt_state, {"loss": loss, "grad_norm": grad_norm,
                                              "updated": updated}

    return jax.jit(step, donate_argnums=(0, 1, 2))


MIN_IMAGE_SIZE = 8  # the generated shapes need 8 pixels a side
DATASET_PEAK = 7  # drawing the dataset takes about this many times its float32 size


def preflight(s: TrainSettings) -> None:
    """Every check that needs neither jax nor the model, so that a bad setting fails at
    once and leaves nothing behind: the numbers' ranges, the generated dataset's size, the
    work dir (a writable directory or creatable in one) and its checkpoints (``--resume``
    needs one; a new run refuses to mix with one)."""
    from .checkpoints import saved_steps

    for name in ("epochs", "steps_per_epoch", "batch_size", "image_size", "log_interval",
                 "checkpoint_interval"):
        if getattr(s, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got "
                              f"{getattr(s, name)}")
    if s.stop_after is not None and not 1 <= s.stop_after <= s.epochs:
        raise ConfigError(f"--stop-after must be an epoch in 1..{s.epochs}, got {s.stop_after}")
    if s.image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"--image-size {s.image_size}: the generated images need at least "
                          f"{MIN_IMAGE_SIZE} pixels a side")
    _check_dataset_size(s)
    check_writable_dir(s.work_dir, "--work-dir")
    directory = os.path.abspath(os.path.join(s.work_dir, "checkpoints"))
    steps = saved_steps(directory)
    if s.resume and not steps:
        why = "it holds no saved step" if os.path.isdir(directory) else \
            "the folder does not exist"
        raise ConfigError(f"--resume: no checkpoint to continue in {directory} ({why}); a run "
                          f"saves its checkpoints there")
    if steps and not s.resume:
        raise ConfigError(f"{s.work_dir} already holds a checkpoint (iteration {steps[-1]}); "
                          f"pass --resume to continue it or choose another --work-dir")


def _check_dataset_size(s: TrainSettings) -> None:
    size = s.steps_per_epoch * s.batch_size * s.image_size ** 2 * 3 * 4
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return
    if size * DATASET_PEAK > memory:
        gib = 2.0 ** 30
        raise ConfigError(
            f"--steps-per-epoch {s.steps_per_epoch} x --batch-size {s.batch_size} generated "
            f"images of {s.image_size}x{s.image_size} pixels take {size / gib:,.1f} GiB "
            f"(about {DATASET_PEAK} times that while they are drawn), more than this "
            f"machine's {memory / gib:,.1f} GiB of memory; lower one of them")


def check_writable_dir(path: str, flag: str) -> None:
    """``path`` is a directory this process can write in, or can be created in one; the
    check writes nothing that stays."""
    import tempfile

    if not path.strip():
        raise ConfigError(f"{flag} is empty; give a directory (an unset shell variable?)")
    full = os.path.abspath(path)
    if os.path.exists(full) and not os.path.isdir(full):
        raise ConfigError(f"{flag} {path}: {full} is a file, not a directory")
    existing = full
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"{flag} {path}: {existing} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".optax_selfsup-check-", dir=existing))
    except OSError as err:
        raise ConfigError(f"{flag} {path}: cannot write in {existing} "
                          f"({err.strerror or err})") from None


def train(s: TrainSettings) -> dict:
    """Run (or resume) the training; returns ``{'iterations', 'probe', 'work_dir', ...}``."""
    import jax
    import numpy as np

    import optax_selfsup as oss

    from .checkpoints import Checkpoints
    from .data import NUM_CLASSES, batch_indices, shapes_dataset
    from .log import Progress, TrainLog
    from .probe import linear_probe
    from .run_length import fit_to_run
    from .run_length_mmengine import optimizer_type
    from .tasks import build_optimizer, choose_model, make_task

    preflight(s)
    cfg, notes = fit_to_run(s.cfg, s.epochs, s.steps_per_epoch)
    model_name, why = choose_model(s.cfg, s.config_path, s.model)
    total = s.epochs * s.steps_per_epoch
    task = make_task(model_name, cfg, seed=s.seed, image_size=s.image_size, max_iters=total)
    tx = build_optimizer(cfg, task, s.steps_per_epoch)
    opt_state = tx.init(task.params)
    fp16 = "loss_scale" in oss.current_hparams(opt_state)
    state = {"params": task.params, "model_state": task.model_state, "opt_state": opt_state,
             "iteration": 0}
    run = {"config": cfg, "model": model_name, "batch_size": s.batch_size,
           "steps_per_epoch": s.steps_per_epoch, "epochs": s.epochs, "seed": s.seed,
           "image_size": s.image_size}

    keep = (cfg.get("checkpoint_config") or {}).get("max_keep_ckpts", 3)
    ckpt = Checkpoints(os.path.join(s.work_dir, "checkpoints"),
                       max_to_keep=keep if isinstance(keep, int) and keep > 0 else None)
    latest = ckpt.latest()
    if s.resume:
        if latest is None:
            raise ConfigError(f"--resume: no checkpoint in {ckpt.directory}")
        state = ckpt.restore(latest, state, run)
    elif latest is not None:
        raise ConfigError(f"{s.work_dir} already holds a checkpoint (iteration {latest}); pass "
                          f"--resume to continue it or choose another --work-dir")
    start = int(state["iteration"])

    progress = Progress(total, start, s.progress)
    echo = progress.echo
    echo(f"model: {model_name} ({why}); {len(oss.torch_names(task.params))} parameter "
         f"tensors; optimizer {optimizer_type(cfg)}")
    for note in notes + list(task.notes):
        echo(f"note: {note}")
    dataset_size = s.steps_per_epoch * s.batch_size
    echo(f"data: {dataset_size} generated {s.image_size}x{s.image_size} images of "
         f"{NUM_CLASSES} classes, batch {s.batch_size}, {s.steps_per_epoch} iterations x "
         f"{s.epochs} epochs = {total}" + (f"; resumed at iteration {start}" if s.resume else ""))
    os.makedirs(s.work_dir, exist_ok=True)
    with open(os.path.join(s.work_dir, "config.json"), "w") as f:
        json.dump(run, f, indent=1, default=repr)

    images, labels = shapes_dataset(dataset_size, s.image_size, s.seed)
    step = _make_step(task, tx, fp16)
    base_key = jax.random.PRNGKey(s.seed)
    log = TrainLog(os.path.join(s.work_dir, "log.json"), append=s.resume, echo=echo)
    stop = total if s.stop_after is None else s.stop_after * s.steps_per_epoch
    params, model_state, opt_state = state["params"], state["model_state"], state["opt_state"]
    tic = time.perf_counter()
    updates = 0  # optimizer updates since the last record (records end at epoch ends,
    # where checkpoints are, so a resumed run counts as the uninterrupted one)
    with progress:
        for it in range(start, stop):
            epoch, inner = divmod(it, s.steps_per_epoch)
            index = batch_indices(s.seed, it, s.steps_per_epoch, s.batch_size, dataset_size)
            m = task.target_momentum(it) if task.target_momentum else 0.0
            data_time = time.perf_counter() - tic
            params, model_state, opt_state, metrics = step(
                params, model_state, opt_state, images[index], labels[index],
                jax.random.fold_in(base_key, it), np.float32(m))
            loss = float(metrics["loss"])
            updates += int(metrics["updated"])
            log.add(loss=loss, grad_norm=metrics["grad_norm"], data_time=data_time,
                    time=time.perf_counter() - tic)
            tic = time.perf_counter()
            progress.advance(f"epoch {epoch + 1} loss {loss:.4f}")
            end_of_epoch = inner + 1 == s.steps_per_epoch
            if (inner + 1) % s.log_interval == 0 or end_of_epoch:
                log.flush_train(epoch=epoch + 1, inner_iter=inner + 1,
                                steps_per_epoch=s.steps_per_epoch,
                                hparams={**_host_hparams(opt_state), "updates": updates})
                updates = 0
            if end_of_epoch and ((epoch + 1) % s.checkpoint_interval == 0 or it + 1 == stop):
                ckpt.save(it + 1, {"params": params, "model_state": model_state,
                                   "opt_state": opt_state}, run)
                echo(f"checkpoint: {ckpt.directory}/{it + 1}")
                tic = time.perf_counter()
    result = {"work_dir": s.work_dir, "model": model_name, "iterations": stop, "start": start,
              "params": params, "model_state": model_state, "opt_state": opt_state,
              "probe": None}
    if stop < total:
        echo(f"stopped after epoch {s.stop_after} (iteration {stop} of {total}); continue with "
             f"--resume")
    elif s.probe:
        test = shapes_dataset(s.probe_test_size, s.image_size, s.seed + 1_000_003)
        probe = linear_probe(task, params, model_state, (images, labels), test, NUM_CLASSES)
        echo(f"linear probe on frozen {probe['feature_dims']}-dim features: test top-1 "
             f"{probe['test_accuracy']:.1f}% (train {probe['train_accuracy']:.1f}%, chance "
             f"{probe['chance']:.0f}%)")
        log.write({"mode": "val", "epoch": s.epochs, "iter": s.probe_test_size,
                   "linear_probe_top1": probe["test_accuracy"],
                   "linear_probe_train_top1": probe["train_accuracy"],
                   "chance": probe["chance"]})
        result["probe"] = probe
    log.close()
    return result
