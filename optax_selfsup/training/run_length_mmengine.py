"""Fit an MMEngine config's run (MMSelfSup 1.x, MMPretrain) onto a short demo run.

``fit_mmengine_to_run(cfg, epochs, steps_per_epoch)`` returns a copy of the config whose
run is ``epochs x steps_per_epoch`` iterations (``T``) and whose ``param_scheduler`` keeps
its shape relative to the run, plus one note per change:

- ``train_cfg``: ``max_epochs = epochs`` (an epoch loop) or ``max_iters = T`` (an
  iteration loop).
- A scheduler stepped per iteration over epochs (``by_epoch=True``,
  ``convert_to_iter_based=True``: every warmup of the shipped recipes) becomes an
  iteration scheduler (``by_epoch=False``) whose ``begin`` / ``end`` / ``T_max`` /
  ``milestones`` / ``step_size`` are the same fractions of the run:
  ``round(x / E0 * T)`` for ``E0`` epochs in the config (a nonzero length stays at
  least 1 iteration).
- A scheduler stepped once per epoch (``by_epoch=True`` alone) stays so, its lengths
  the same fractions of the run in epochs: ``round(x / E0 * epochs)`` (``end`` at
  least ``begin + 1``). With few epochs it changes rarely: 2 epochs, 2 values.
- An iteration scheduler (``by_epoch=False``) of an iteration loop scales by
  ``T / N0``; of an epoch loop (its original epoch length is unknown) it is kept when
  it ends in the first half of the run, else shrunk so that it does.
- Schedulers whose lengths are absolute (``periods`` of ``CosineRestart*``,
  ``total_steps`` of ``OneCycle*``) and epoch schedulers converted under an iteration
  loop (their epoch length is unknown) are kept as written, with a note.
- A warmup (a ``LinearLR`` / ``LinearParamScheduler`` from iteration 0) lasts at least 2
  iterations: MMEngine's linear scheduler reaches its ``end_factor`` at iteration
  ``end - 1``, so one of a single iteration never leaves ``start_factor`` and every later
  chained scheduler would continue from there (an lr 1e-4 times the config's for the whole
  run). Iteration schedulers that began where it ended move with it.
- A scheduler that began where another ended in the config (a cosine after its
  warmup) begins where that one ends after fitting (rounding could otherwise start it
  inside the warmup); a ``T_max`` that was its length stays its length.
- ``SwAVHook.frozen_layers_cfg`` (iterations): kept when it ends in the first half of
  the run, else shortened to half of it (an iteration loop: the same fraction).
- ``auto_scale_lr.enable=True`` is refused (the lr would depend on the demo's batch).

``end`` and ``T_max`` that the config leaves out keep their defaults (the end of the run,
``end - begin``), which follow the new run by themselves.
"""

from __future__ import annotations

import copy

from ..errors import ConfigError

LENGTH_KEYS = ("begin", "end", "T_max", "milestones", "step_size")
ABSOLUTE = {"periods": "CosineRestart", "total_steps": "OneCycle"}


def optimizer_type(cfg: dict) -> str:
    """The optimizer's type of either generation, for messages."""
    ow = cfg.get("optim_wrapper")
    opt = ow.get("optimizer") if isinstance(ow, dict) else cfg.get("optimizer")
    return str((opt or {}).get("type", "?")) if isinstance(opt, dict) else "?"


def _scaled(value, factor: float, floor: int):
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:  # milestones stay strictly increasing
            out.append(max(round(v * factor), out[-1] + 1 if out else floor))
        return out
    return max(floor, round(value * factor)) if value else value


def _fit_scheduler(s: dict, i: int, factor: float, how: str, notes: list, *,
                   to_iters: bool = False) -> dict:
    before = {k: s[k] for k in LENGTH_KEYS if k in s}
    out = dict(s)
    for key, value in before.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, list, tuple)):
            return s  # the builder reports a bad value
        out[key] = _scaled(value, factor, 0 if key == "begin" else 1)
    if "end" in out and out["end"] <= out.get("begin", 0):
        out["end"] = out.get("begin", 0) + 1
    if to_iters:
        out["by_epoch"] = False
        out.pop("convert_to_iter_based", None)
    after = {k: out[k] for k in before}
    if after != before or to_iters:
        notes.append(f"param_scheduler[{i}] {s.get('type')}: {before} -> {after} ({how})")
    return out


def _fit_frozen(cfg: dict, by_epoch: bool, original: int, total: int, notes: list) -> None:
    hooks = cfg.get("custom_hooks")
    if not isinstance(hooks, list):
        return
    for hook in hooks:
        frozen = hook.get("frozen_layers_cfg") if isinstance(hook, dict) else None
        if not isinstance(frozen, dict):
            continue
        fitted = dict(frozen)
        for key, iters in frozen.items():
            if not isinstance(iters, int) or isinstance(iters, bool) or iters <= 0:
                continue
            new = min(max(1, round(iters / original * total)), total) if not by_epoch else \
                (iters if iters <= total // 2 else max(1, total // 2))
            if new != iters:
                notes.append(f"custom_hooks {hook.get('type')}.frozen_layers_cfg: {key!r} "
                             f"frozen for {iters} iterations -> {new} of this run's {total}")
            fitted[key] = new
        hook["frozen_layers_cfg"] = fitted


def fit_mmengine_to_run(cfg: dict, epochs: int, steps_per_epoch: int) -> tuple[dict, list]:
    """``(config for an epochs x steps_per_epoch run, notes)``; the input is not changed."""
    from ..schedules.mmengine_loop import TrainLoop

    cfg = copy.deepcopy(cfg)
    if (cfg.get("auto_scale_lr") or {}).get("enable"):
        raise ConfigError("auto_scale_lr.enable=True: the train command does not scale the lr "
                          "by its small batch; --cfg-options auto_scale_lr.enable=False trains "
                          "with the config's lr")
    train_cfg = dict(cfg.get("train_cfg") or {})
    loop = TrainLoop.from_train_cfg(train_cfg, steps_per_epoch)  # checks it
    total = epochs * steps_per_epoch
    if loop.by_epoch:
        original = loop.max_epochs
        train_cfg["max_epochs"] = epochs
        notes = [f"train_cfg: max_epochs {original} -> {epochs} ({steps_per_epoch} iterations "
                 f"each)"]
    else:
        original = loop.max_iters
        train_cfg["max_iters"] = total
        notes = [f"train_cfg: max_iters {original} -> {total}"]
    cfg["train_cfg"] = train_cfg
    schedulers = cfg.get("param_scheduler")
    single = isinstance(schedulers, dict)
    fitted = []
    for i, s in enumerate([schedulers] if single else list(schedulers or [])):
        fitted.append(_fit_one(s, i, loop.by_epoch, original, epochs, total, notes))
    if not single:
        _keep_adjacent(list(schedulers or []), fitted, notes)
        _lengthen_warmup(fitted, total, notes)
    if schedulers is not None:
        cfg["param_scheduler"] = fitted[0] if single else fitted
    _fit_frozen(cfg, loop.by_epoch, original, total, notes)
    return cfg, notes


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _keep_adjacent(original: list, fitted: list, notes: list) -> None:
    """A scheduler that began where another ended (a cosine after its warmup) still begins
    there: rounding each to the short run could otherwise start it inside the warmup (10 of
    300 epochs on 6 iterations: warmup [0, 1), cosine from round(0.2) = 0), compounding the
    two. Its ``T_max``, when it was the scheduler's length, stays its length."""
    for j, (orig, s) in enumerate(zip(original, fitted)):
        if not (isinstance(orig, dict) and isinstance(s, dict) and _int(orig.get("begin"))):
            continue
        for i, (before, other) in enumerate(zip(original, fitted)):
            if i == j or not (isinstance(before, dict) and isinstance(other, dict)) or \
                    before.get("end") != orig["begin"] or not _int(other.get("end")) or \
                    other.get("by_epoch", True) != s.get("by_epoch", True) or \
                    s.get("begin") == other["end"]:
                continue
            new = dict(s, begin=other["end"])
            if _int(s.get("end")) and new["end"] <= new["begin"]:
                new["end"] = new["begin"] + 1
            if _int(orig.get("end")) and orig.get("T_max") == orig["end"] - orig["begin"] \
                    and _int(new.get("end")):
                new["T_max"] = new["end"] - new["begin"]
            fitted[j] = new
            notes.append(f"param_scheduler[{j}] {s.get('type')}: begins where "
                         f"param_scheduler[{i}] ends, as in the config: "
                         f"{ {k: s[k] for k in ('begin', 'end', 'T_max') if k in s} } -> "
                         f"{ {k: new[k] for k in ('begin', 'end', 'T_max') if k in new} }")
            break


def _lengthen_warmup(schedulers: list, total: int, notes: list) -> None:
    """At least 2 iterations for a linear warmup from 0 (see the module docstring; a run of
    one iteration keeps 1); iteration schedulers that began at its end begin at the new end."""
    shortest = min(2, total)
    for i, s in enumerate(schedulers):
        if not (isinstance(s, dict) and str(s.get("type", "")).rpartition(".")[2] in (
                "LinearLR", "LinearParamScheduler") and s.get("by_epoch") is False
                and s.get("begin", 0) == 0 and isinstance(s.get("end"), int)):
            continue
        end = s["end"]
        if end >= shortest:
            return
        schedulers[i] = dict(s, end=shortest)
        moved = []
        for j, other in enumerate(schedulers):
            if j != i and isinstance(other, dict) and other.get("by_epoch") is False and \
                    other.get("begin") == end:
                schedulers[j] = dict(other, begin=shortest)
                if isinstance(other.get("T_max"), int):
                    schedulers[j]["T_max"] = max(1, other["T_max"] - (shortest - end))
                moved.append(j)
        notes.append(f"param_scheduler[{i}] {s.get('type')}: a warmup of {end} iteration "
                     f"lengthened to {shortest} (one of 1 iteration never leaves start_factor)"
                     + (f"; param_scheduler{moved} begin there" if moved else ""))
        return


def _fit_one(s, i, by_epoch_loop: bool, original: int, epochs: int, total: int, notes):
    if not isinstance(s, dict):
        return s  # the builder reports it
    kind = str(s.get("type", ""))
    for key, family in ABSOLUTE.items():
        if key in s:
            notes.append(f"param_scheduler[{i}] {kind}: {key} {s[key]} is an absolute length "
                         f"({family}); kept as written")
            return s
    by_epoch = s.get("by_epoch", True)
    convert = s.get("convert_to_iter_based", False)
    if by_epoch_loop and by_epoch:
        if convert:
            return _fit_scheduler(s, i, total / original, f"epochs stepped per iteration -> "
                                  f"iterations of this run's {total}", notes, to_iters=True)
        return _fit_scheduler(s, i, epochs / original, f"epochs of this run's {epochs}",
                              notes)
    if not by_epoch_loop and not by_epoch:
        return _fit_scheduler(s, i, total / original, f"iterations of this run's {total}",
                              notes)
    if not by_epoch_loop:
        notes.append(f"param_scheduler[{i}] {kind}: by_epoch=True under an iteration loop "
                     f"(its epoch is the data loader's length); kept as written")
        return s
    end = s.get("end")
    if isinstance(end, int) and not isinstance(end, bool) and end > total // 2:
        return _fit_scheduler(s, i, max(1, total // 2) / end, f"iterations, shrunk to end in "
                              f"the first half of this run's {total}", notes)
    return s
