"""Continue an MMEngine run: where its resume restarts, and proof that the plan lands there.

MMEngine 0.10's ``Runner.resume`` sets the loop's counters to ``meta['epoch']`` and
``meta['iter']``, loads the optimizer (param groups with their current ``lr`` /
``momentum`` / ``weight_decay`` and ``initial_*`` bases, slots, the AMP
``GradScaler``) and each scheduler's ``__dict__`` (``last_step``, ``_global_step``,
``begin``, ``end`` and its own settings, which replace the config's). The chainable
schedulers then continue from the group's values, so the resumed run is the
uninterrupted one, with three exceptions that decide what is accepted here:

- ``OptimWrapper.initialize_count_status`` restarts the accumulation counter at
  ``meta['iter']`` with empty gradients: a window the checkpoint cut loses its first
  micro-batches (the rest are still divided by ``accumulative_counts``). The state
  starts with an empty buffer at the same counter, which is the same run.
- An ``EpochBasedTrainLoop`` resumed from an iteration checkpoint (``meta['iter']``
  past ``meta['epoch'] * steps_per_epoch``) runs epoch ``meta['epoch']`` again from its
  first batch with the iteration counter at ``meta['iter']``: its epoch schedulers (and
  an epoch-wise ``SimSiamHook``) act ``meta['iter'] - meta['epoch'] * steps_per_epoch``
  iterations later than in the uninterrupted run, to the end. A schedule of the
  iteration cannot follow that: refused when anything moves by epoch, else accepted
  with a ``CheckpointWarning`` (the optimizer sees the same values; the data of the
  replayed epoch are the training loop's business).
- An ``IterBasedTrainLoop`` calls ``before_train_epoch`` again at the resume, where an
  epoch-wise ``SimSiamHook`` writes its lr once more: refused.

What is compared (one line naming the scheduler, the group and the values):

- every scheduler's ``param_name``, ``by_epoch``, ``begin``, ``end`` (after
  ``convert_to_iter_based``) and settings (``T_max``, ``eta_min``, ``milestones``,
  ``start_factor``...) with the config's: MMEngine resumes the checkpoint's schedule,
  not the config's; and its ``_global_step`` with ``meta`` (iteration schedulers step
  once per finished iteration, epoch schedulers once per finished epoch);
- every param group's ``lr``, momentum (``betas[0]`` of the Adam family) and
  ``weight_decay`` with the plan's closed-form schedules at ``meta['iter']`` (float64;
  ``1e-6`` relative to the group's value or base), and ``initial_*`` with the plan's
  bases; the groups of SimSiamHook's ``fix_lr`` are written by the hook before their
  next use and their lr is not compared;
- the dynamic ``GradScaler``'s ``growth_factor``, ``backoff_factor`` and
  ``growth_interval`` (the resume loads the checkpoint's) with ``optim_wrapper.loss_scale``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping

import jax
import numpy as np

from ..schedules import mmengine_schedulers as ms
from ..schedules.mmengine_onecycle import OneCycle
from .errors import CheckpointWarning, TorchCheckpointError
from .torch_run import TorchRun

__all__ = ["check_mmengine_run"]

# our scheduler's field -> the attribute MMEngine keeps in the scheduler's state dict
_SETTINGS = (
    (ms.Step, (("step_size", "step_size"), ("gamma", "gamma"))),
    (ms.MultiStep, (("milestones", "milestones"), ("gamma", "gamma"))),
    (ms.Constant, (("factor", "factor"), ("total", "total_iters"))),
    (ms.Exponential, (("gamma", "gamma"),)),
    (ms.Linear, (("start_factor", "start_factor"), ("end_factor", "end_factor"),
                 ("total", "total_iters"))),
    (ms.Poly, (("eta_min", "eta_min"), ("power", "power"), ("total", "total_iters"))),
    (ms.Cosine, (("T", "T_max"), ("eta_min", "eta_min"), ("eta_min_ratio", "eta_min_ratio"))),
    (ms.CosineRestart, (("periods", "periods"), ("restart_weights", "restart_weights"),
                        ("eta_min", "eta_min"), ("eta_min_ratio", "eta_min_ratio"))),
)
RTOL = 1e-6  # group values: MMEngine's float64 recursion vs the closed form


def _schedulers(plan) -> list:
    seen = {}
    for gs in plan.schedules.values():
        for s in gs.schedule.schedulers:
            seen.setdefault(s.timing.index, s)
    return [seen[i] for i in sorted(seen)]


def _simsiam_every(cfg) -> str | None:
    """'epoch' / 'iter' for a SimSiamHook that fixes an lr, else None."""
    for hook in (cfg.get("custom_hooks") or []):
        if isinstance(hook, Mapping) and str(hook.get("type", "")).endswith("SimSiamHook") \
                and hook.get("fix_pred_lr"):
            return "epoch" if hook.get("adjust_by_epoch", True) else "iter"
    return None


def _name(s) -> str:
    return f"{s.timing.where} ({s.timing.type})"


def _check_position(run: TorchRun, plan, cfg) -> None:
    loop, it, epoch, source = plan.clock, run.iteration, run.epoch, run.source
    if it > loop.max_iters:
        raise TorchCheckpointError(
            f"{source}: meta['iter']={it} is past this config's run of {loop.max_iters} "
            "iterations (train_cfg): the checkpoint belongs to a longer run")
    simsiam = _simsiam_every(cfg) if any(plan.fix_lr) else None
    if not loop.by_epoch:
        if simsiam == "epoch" and 0 < it < loop.max_iters:
            raise TorchCheckpointError(
                f"{source}: custom_hooks SimSiamHook(adjust_by_epoch=True) under an "
                "IterBasedTrainLoop: MMEngine's resume calls before_train_epoch again, where "
                f"the hook writes the fixed lr once more at iteration {it}, which the "
                "uninterrupted run does not; use adjust_by_epoch=False")
        return
    per_epoch = loop.steps_per_epoch
    if run.run_length is not None:
        max_iters, max_epochs = run.run_length
        if max_epochs and max_iters != max_epochs * per_epoch:
            raise TorchCheckpointError(
                f"{source}: steps_per_epoch={per_epoch}, but the run that wrote it had "
                f"{max_iters / max_epochs:g} iterations per epoch (its message_hub: "
                f"max_iters={max_iters}, max_epochs={max_epochs}); give steps_per_epoch= its "
                "train data loader's length")
    if it == epoch * per_epoch:
        return  # an epoch checkpoint (the epoch schedulers have stepped)
    if not epoch * per_epoch < it <= (epoch + 1) * per_epoch:
        had = f"{it / epoch:g} iterations per epoch" if epoch else "another epoch length"
        raise TorchCheckpointError(
            f"{source}: meta epoch={epoch}, iter={it} do not fit steps_per_epoch={per_epoch}: "
            f"the run that wrote it had {had}; give steps_per_epoch= its train data loader's "
            "length")
    done = it - epoch * per_epoch
    by_epoch = [_name(s) for s in _schedulers(plan) if s.timing.by_epoch]
    if simsiam == "epoch":
        by_epoch.append("custom_hooks SimSiamHook")
    replay = (f"{source}: meta epoch={epoch}, iter={it} is an iteration checkpoint saved "
              f"after {done} of the {per_epoch} iterations of epoch {epoch} of an "
              f"EpochBasedTrainLoop: MMEngine's resume runs epoch {epoch} again from its "
              f"first batch with the iteration counter at {it}")
    if by_epoch:
        raise TorchCheckpointError(
            f"{replay}, so {', '.join(by_epoch)} act{'s' if len(by_epoch) == 1 else ''} "
            f"{done} iterations later than in the uninterrupted run, to its end, which a "
            "schedule of the iteration cannot follow; continue from an epoch checkpoint "
            "(epoch_N.pth, saved after N whole epochs), or make the schedulers "
            "iteration-based (convert_to_iter_based=True)")
    warnings.warn(f"{replay} (and {per_epoch - done} more iterations than the run had left): "
                  "nothing in this config moves by epoch, so the optimizer continues alike; "
                  "feed the batches you mean to train on", CheckpointWarning, stacklevel=4)


def _plain(value):
    """A 0-d tensor / array / NumPy scalar as its Python number; anything else as it is."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _same(theirs, ours) -> bool:
    theirs = _plain(theirs)
    if not isinstance(theirs, (numbers.Real, str, list, tuple, Mapping, type(None))):
        return False  # a tensor, an array...: not a setting MMEngine writes
    if ours is None or theirs is None:
        return ours is None and theirs is None
    if isinstance(ours, (tuple, list)):
        if isinstance(theirs, Mapping):  # MultiStep's Counter: milestone -> repeats
            theirs = sorted(k for k, n in theirs.items() for _ in range(int(n)))
        return isinstance(theirs, (tuple, list)) and len(theirs) == len(ours) and all(
            _same(a, b) for a, b in zip(theirs, ours))
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return bool(ours) == bool(theirs) and type(ours) is type(theirs)
    if isinstance(ours, numbers.Real) and isinstance(theirs, numbers.Real):
        return math.isclose(float(theirs), float(ours), rel_tol=1e-9, abs_tol=0.0)
    return theirs == ours


def _settings(s) -> list[tuple[str, object]]:
    tm = s.timing
    out = [("param_name", tm.param), ("by_epoch", tm.by_epoch), ("begin", tm.begin),
           ("end", tm.end)]
    for cls, fields in _SETTINGS:
        if type(s) is cls or (cls is ms.Cosine and isinstance(s, ms.Cosine)):
            out += [(key, getattr(s, ours)) for ours, key in fields]
            break
    return out


def _check_schedulers(run: TorchRun, plan) -> None:
    ours, theirs, source = _schedulers(plan), run.schedulers, run.source
    if theirs is None:
        if ours:
            raise TorchCheckpointError(
                f"{source} has no 'param_schedulers' (saved with save_param_scheduler=False): "
                "MMEngine's resume would keep its schedulers as built, at step 0, while the "
                "param groups continue; refusing to guess that run")
        return
    if len(theirs) != len(ours):
        raise TorchCheckpointError(
            f"{source} has {len(theirs)} param schedulers; this config's param_scheduler has "
            f"{len(ours)}: the checkpoint was written by another config")
    loop = plan.clock
    for s, state in zip(ours, theirs):
        for key, value in _settings(s):
            if key not in state:
                raise TorchCheckpointError(
                    f"{source}: the state of {_name(s)} has no {key!r} (keys: "
                    f"{sorted(state)}): the checkpoint has another scheduler there")
            if not _same(state[key], value):
                raise TorchCheckpointError(
                    f"{source}: {_name(s)} has {key}={state[key]!r} in the checkpoint, "
                    f"{value!r} in this config (as MMEngine keeps it, after "
                    "convert_to_iter_based): MMEngine's resume restores each scheduler's state "
                    "from the checkpoint, so the run it continues keeps the checkpoint's "
                    "schedule; give the config the settings the checkpoint was written with "
                    "(e.g. its max_epochs / end)")
        if not s.timing.by_epoch:
            expected, unit = run.iteration, "iterations"
        elif loop.by_epoch:
            expected, unit = run.epoch, "epochs"
        else:
            continue  # an epoch scheduler of an iteration loop steps only when built
        step = _plain(state.get("_global_step"))
        if step is not None and not (isinstance(step, numbers.Integral) and step == expected):
            raise TorchCheckpointError(
                f"{source}: {_name(s)} has stepped _global_step={step!r} times, but meta "
                f"epoch={run.epoch}, iter={run.iteration} say {expected} {unit} are done")


def _values_at(plan, it) -> dict:
    """Per scheduled hyperparameter, every group's value at iteration ``it`` (float64)."""
    out = {}
    with jax.enable_x64(True):  # one compiled evaluation per hyperparameter, not op by op
        for name, gs in plan.schedules.items():
            values = jax.jit(gs.schedule.bind(gs.group_bases))(np.asarray(it, np.int64))
            out[name] = np.asarray(values, np.float64)
    return out


def _group_value(group, name, momentum_key):
    if name == "momentum":
        if momentum_key == "betas":
            betas = group.get("betas")
            return None if betas is None else betas[0]
        return group.get("momentum") if momentum_key == "momentum" else None
    return group.get(name)


def _base(hparams, name, momentum_key):
    if name == "momentum":
        if momentum_key is None or momentum_key not in hparams:
            return None
        value = hparams[momentum_key]
        return value[0] if momentum_key == "betas" else value
    return hparams.get(name)


def _number(value, where, key) -> float:
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TorchCheckpointError(f"{where} has {key}={value!r}, which is not a number: "
                                   "torch writes a float there")
    return float(value)


def _close(theirs, ours, base) -> bool:
    scale = max(abs(float(ours)), abs(float(base)))
    return abs(float(theirs) - float(ours)) <= RTOL * scale + 1e-15


def _members(run, by_name, names):
    """Per checkpoint param group: the template leaves in it (by leaf index)."""
    position = {n: i for i, n in enumerate(names)}
    members = [[] for _ in run.param_groups]
    index_of = {id(g): gi for gi, g in enumerate(run.param_groups)}
    for name, (_, group) in by_name.items():
        members[index_of[id(group)]].append(position[name])
    return members


def _check_groups(run: TorchRun, plan, by_name, names) -> None:
    source, it = run.source, run.iteration
    if len(run.param_groups) != plan.num_groups:
        per = "one per parameter" if plan.num_groups > 1 else "one for all parameters"
        raise TorchCheckpointError(
            f"{source}: the checkpoint's optimizer has {len(run.param_groups)} param groups; "
            f"this config builds {plan.num_groups} ({per}: optim_wrapper.paramwise_cfg) for "
            "the params template, which must hold every parameter of the torch optimizer")
    values = _values_at(plan, it) if it < plan.clock.max_iters else {}
    mkey = plan.rule.momentum_key
    # MMEngine's OneCycle replaces initial_lr with eta_max / div_factor: no config base
    onecycle = {s.timing.param for s in _schedulers(plan) if isinstance(s, OneCycle)}
    for gi, (group, leaves) in enumerate(zip(run.param_groups, _members(run, by_name, names))):
        if not leaves:
            continue
        ours_groups = sorted({plan.group_of[i] for i in leaves})
        label = (repr(names[leaves[0]]) if len(leaves) == 1 else
                 f"{len(leaves)} parameters: {names[leaves[0]]!r}, {names[leaves[1]]!r}, ...")
        if len(ours_groups) > 1:
            raise TorchCheckpointError(
                f"{source}: the checkpoint's param group {gi} holds {label}, which this config "
                "puts in different groups (optim_wrapper.paramwise_cfg)")
        g, i = ours_groups[0], leaves[0]
        for name in ("lr", "momentum", "weight_decay"):
            theirs, base = _group_value(group, name, mkey), _base(plan.hparams[i], name, mkey)
            if theirs is None or base is None:
                continue
            shown = "betas[0]" if name == "momentum" and mkey == "betas" else name
            where = f"{source}: param group {gi} ({label})"
            theirs = _number(theirs, where, shown)
            initial = group.get(f"initial_{name}")
            initial = None if initial is None else _number(initial, where, f"initial_{name}")
            has_base = initial is not None and name not in onecycle
            if has_base and not _close(initial, base, base):
                raise TorchCheckpointError(
                    f"{source}: param group {gi} ({label}) has initial_{name}={initial!r} (its "
                    f"base before any scheduler) in the checkpoint; this config builds "
                    f"{float(base)!r} (optim_wrapper, paramwise_cfg, auto_scale_lr): it was "
                    "written by another config")
            if name == "lr" and plan.fix_lr[i]:
                continue  # SimSiamHook writes it before its next use
            if name in plan.schedules and name not in values:
                continue  # a finished run: the schedules hold their last value
            ours = values[name][g] if name in values else base
            if not _close(theirs, ours, base):
                why = "its param_scheduler" if name in values else "its optim_wrapper"
                raise TorchCheckpointError(
                    f"{source}: param group {gi} ({label}) has {shown}={float(theirs)!r} at "
                    f"iteration {it} in the checkpoint; this config ({why}) gives "
                    f"{float(ours)!r} there: the checkpoint was written by another config or "
                    "with another steps_per_epoch; refusing to continue it with this one")


def _check_scaler(run: TorchRun, plan) -> None:
    scaler, ours = run.loss_scaler, plan.loss_scale
    if scaler is None or ours is None:
        return
    if ours["growth_factor"] == 1.0 and ours["backoff_factor"] == 1.0:
        return  # a static scale: upstream sets it back after every step
    for key in ("growth_factor", "backoff_factor", "growth_interval"):
        if key in scaler and not _same(scaler[key], float(ours[key])):
            raise TorchCheckpointError(
                f"{run.source}: {run.scaler_key}[{key!r}]={scaler[key]!r}, this config's "
                f"optim_wrapper.loss_scale gives {ours[key]!r}: MMEngine's resume loads the "
                "checkpoint's GradScaler settings; give the config the same")


def check_mmengine_run(run: TorchRun, plan, cfg, by_name, names) -> None:
    """Refuse (one line) an MMEngine checkpoint that ``plan`` would not continue exactly."""
    if plan.generation != "mmengine":
        raise TorchCheckpointError(
            f"{run.source} was written by MMEngine's Runner (it has message_hub / "
            "param_schedulers); this config is an MMSelfSup 0.x (mmcv 1.x) config: continue it "
            "with the MMEngine config it was trained with (optim_wrapper, param_scheduler, "
            "train_cfg)")
    _check_position(run, plan, cfg)
    _check_schedulers(run, plan)
    _check_groups(run, plan, by_name, names)
    _check_scaler(run, plan)
