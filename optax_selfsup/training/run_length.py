"""Fit a config's run (hundreds of ImageNet epochs) onto a short demo run.

(MMEngine configs: ``run_length_mmengine``; this module is the 0.x / mmcv 1.x rules.)

``fit_to_run(cfg, epochs, steps_per_epoch)`` returns a copy of the config whose
run is ``epochs x steps_per_epoch`` iterations and whose schedules keep their
shape relative to the run, plus one note per change (the command prints them):

- ``runner``: ``max_epochs = epochs`` (EpochBasedRunner) or
  ``max_iters = epochs * steps_per_epoch`` (IterBasedRunner).
- Policies that depend on ``progress / max_progress`` only (Fixed, Poly,
  CosineAnnealing, LinearAnnealing, FlatCosineAnnealing, StepFixCosineAnnealing,
  Cyclic, OneCycle without ``total_steps``) are compressed by the new run length
  itself and need no change.
- Warmup: the same fraction of the run as in the config. A warmup given in
  epochs (``warmup_by_epoch=True``) of an ``E0``-epoch run becomes
  ``round(warmup_iters / E0 * T)`` iterations (at least 1) of this ``T``-iteration
  run, written with ``warmup_by_epoch=False``. A warmup given in iterations of an
  IterBasedRunner run of ``N0`` iterations becomes ``round(W / N0 * T)``. A warmup
  in iterations of an epoch-based config (its original length in iterations is
  unknown) is kept when it fits in the first half of the run, else shortened to
  half of it.
- Step with milestones in epochs: each milestone ``s`` becomes the iteration
  ``round(s / E0 * T)`` (``by_epoch=False``); the decay is the config's. Where two
  milestones would land on the same iteration of a very short run, the later one
  moves to the next iteration.
- Exp, Inv, CosineRestart and OneCycle's ``total_steps`` are absolute lengths;
  they are kept as written, with a note saying so.
- ``optimizer_config.frozen_layers_cfg`` (iterations during which layers get no
  update, e.g. SwAV's prototypes for 5005 iterations, the first ImageNet epoch):
  like a warmup in iterations, kept when it ends in the first half of the run,
  else shortened to half of it (IterBasedRunner: the same fraction of the run).
"""

from __future__ import annotations

import copy

from ..errors import ConfigError

ABSOLUTE_POLICIES = ("exp", "inv", "cosinerestart")


def _fraction(value, original: int, total: int) -> int:
    return max(1, round(value / original * total))


def _fit_warmup(section: dict, key: str, epoch_based: bool, original, total: int, notes):
    if not section.get("warmup"):
        return
    by_epoch = section.get("warmup_by_epoch", False) and key == "lr_config"
    iters = section.get("warmup_iters")
    if not isinstance(iters, int) or iters <= 0:
        return  # the builder reports the bad value
    if by_epoch or not epoch_based:
        unit = "epochs" if by_epoch else "iterations"
        new = min(_fraction(iters, original, total), total)
        notes.append(f"{key}: warmup of {iters} {unit} out of {original} -> {new} of this "
                     f"run's {total} iterations (same fraction)")
    elif iters > total // 2:
        new = max(1, total // 2)
        notes.append(f"{key}: warmup of {iters} iterations is longer than half of this "
                     f"{total}-iteration run; shortened to {new}")
    else:
        return
    section["warmup_iters"] = new
    if key == "lr_config":
        section["warmup_by_epoch"] = False


def _fit_step(section: dict, key: str, epoch_based: bool, original, total: int, notes):
    policy = str(section.get("policy", "")).lower()
    if policy in ABSOLUTE_POLICIES or (policy == "onecycle" and "total_steps" in section):
        notes.append(f"{key}: policy {section['policy']!r} has absolute lengths; kept as written")
        return
    if policy != "step" or "step" not in section:
        return
    if epoch_based and section.get("by_epoch", True) is False:
        notes.append(f"{key}: Step milestones in iterations of the original run; kept as written")
        return
    step = section["step"]
    milestones = step if isinstance(step, (list, tuple)) else None
    if milestones is None:
        new = _fraction(step, original, total)
    else:
        new = []
        for s in milestones:  # strictly increasing, as the builder requires
            new.append(max(_fraction(s, original, total), new[-1] + 1 if new else 1))
    unit = "epochs" if epoch_based else "iterations"
    notes.append(f"{key}: Step milestones {step} {unit} of {original} -> iterations {new} of "
                 f"this run's {total}")
    section["step"] = new
    section["by_epoch"] = False


def _fit_frozen(cfg: dict, epoch_based: bool, original, total: int, notes) -> None:
    hook = cfg.get("optimizer_config")
    frozen = hook.get("frozen_layers_cfg") if isinstance(hook, dict) else None
    if not isinstance(frozen, dict):
        return
    fitted = {}
    for key, iters in frozen.items():
        if not isinstance(iters, int) or isinstance(iters, bool) or iters <= 0:
            fitted[key] = iters  # the builder reports a bad value
            continue
        if not epoch_based:
            new = min(_fraction(iters, original, total), total)
        elif iters > total // 2:
            new = max(1, total // 2)
        else:
            new = iters
        if new != iters:
            notes.append(f"optimizer_config.frozen_layers_cfg: {key!r} frozen for {iters} "
                         f"iterations -> {new} of this run's {total}")
        fitted[key] = new
    cfg["optimizer_config"] = dict(hook, frozen_layers_cfg=fitted)


def fit_to_run(cfg: dict, epochs: int, steps_per_epoch: int) -> tuple[dict, list[str]]:
    """``(config for an epochs x steps_per_epoch run, notes)``; the input is not changed."""
    if epochs < 1 or steps_per_epoch < 1:
        raise ConfigError(f"--epochs and --steps-per-epoch must be positive, got {epochs} and "
                          f"{steps_per_epoch}")
    from ..config.generation import MMENGINE, generation_of

    if generation_of(cfg) == MMENGINE:  # train_cfg and param_scheduler instead
        from .run_length_mmengine import fit_mmengine_to_run

        return fit_mmengine_to_run(cfg, epochs, steps_per_epoch)
    cfg = copy.deepcopy(cfg)
    if not isinstance(cfg.get("runner") or {}, dict):
        raise ConfigError(f"runner must be a dict such as dict(type='EpochBasedRunner', "
                          f"max_epochs=200), got {cfg['runner']!r}")
    runner = dict(cfg.get("runner") or {"type": "EpochBasedRunner"})
    kind = runner.get("type", "EpochBasedRunner")
    total = epochs * steps_per_epoch
    notes = []
    if kind == "IterBasedRunner":
        original = runner.get("max_iters")
        runner["max_iters"] = total
        epoch_based = False
        notes.append(f"runner: IterBasedRunner max_iters {original} -> {total}")
    else:
        original = runner.get("max_epochs")
        runner["max_epochs"] = epochs
        epoch_based = True
        notes.append(f"runner: max_epochs {original} -> {epochs} ({steps_per_epoch} iterations "
                     f"each)")
    cfg["runner"] = runner
    if not isinstance(original, int) or original <= 0:
        return cfg, notes  # nothing to scale by; the builder reports a bad runner
    for key in ("lr_config", "momentum_config"):
        if isinstance(cfg.get(key), dict):
            section = dict(cfg[key])
            _fit_warmup(section, key, epoch_based, original, total, notes)
            _fit_step(section, key, epoch_based, original, total, notes)
            cfg[key] = section
    _fit_frozen(cfg, epoch_based, original, total, notes)
    return cfg, notes
