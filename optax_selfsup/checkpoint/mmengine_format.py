"""MMEngine checkpoints (MMSelfSup 1.x, MMPretrain 1.x): read into a ``TorchRun``.

``Runner.save_checkpoint`` (MMEngine 0.10) writes ``{'meta', 'state_dict',
'message_hub', 'optimizer', 'param_schedulers'}``:

- ``meta['iter']``: finished iterations (an iteration checkpoint saves ``runner.iter
  + 1`` from ``after_train_iter``, an epoch checkpoint ``runner.iter`` from
  ``after_train_epoch``, where the loop has counted the epoch's last iteration);
  ``meta['epoch']``: finished epochs for an epoch checkpoint, the current (unfinished)
  epoch for an iteration checkpoint. ``Runner.resume`` sets the train loop's counters
  to these two numbers; the message hub's own ``iter`` is the last iteration's index
  and is not read by the resume;
- ``optimizer``: ``OptimWrapper.state_dict()``: torch's ``{'state', 'param_groups'}``
  plus ``base_param_settings`` (a hidden extra group, the optimizer's defaults, that
  the wrapper adds when there are several groups and that the schedulers step too;
  no parameter reads it) and, for ``AmpOptimWrapper``, ``loss_scaler`` (the
  ``GradScaler`` state: ``scale``, ``growth_factor``, ``backoff_factor``,
  ``growth_interval``, ``_growth_tracker``; ``{}`` from a disabled scaler);
- ``param_schedulers``: each scheduler's ``state_dict()`` (its ``__dict__``: ``begin``,
  ``end``, ``by_epoch``, ``last_step``, ``_global_step``, its own settings), in config
  order; a dict of such lists for several optimizers (not read here);
- ``message_hub``: logged scalars and runtime information; only its ``max_iters`` and
  ``max_epochs`` are read (the run's epoch length, to check ``steps_per_epoch``).

The message hub holds MMEngine ``HistoryBuffer`` objects and NumPy values, which
``torch.load(weights_only=True)`` refuses (MMEngine 0.10 itself cannot load them
under torch >= 2.6's default). ``MESSAGE_HUB_GLOBALS`` lets that one load through
with inert stand-ins: the buffers become plain attribute holders, nothing of
MMEngine is imported or run.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping

import numpy as np

from .errors import TorchCheckpointError
from .torch_run import TorchRun, iteration, optimizer_parts, state_dict_of

SCALER_KEY = "optimizer['loss_scaler']"
_HISTORY_BUFFER = "mmengine.logging.history_buffer.HistoryBuffer"


class LoggedScalars:
    """Inert stand-in for MMEngine's ``HistoryBuffer`` (the message hub's logged values):
    its pickled state is kept as attributes; nothing of it runs."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


def _buffer_attribute(owner, name):
    """``getattr(HistoryBuffer, 'mean')``, pickled in the buffer's table of statistics:
    allowed on the stand-in only, where it gives the name."""
    if owner is not LoggedScalars:
        raise pickle.UnpicklingError(f"getattr({owner!r}, {name!r}) is not allowed in a "
                                     "checkpoint")
    return str(name)


def _numpy_globals() -> list:
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    out = [np.ndarray, np.dtype]
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2, numpy 1
        out += [(multiarray._reconstruct, f"{module}._reconstruct"),
                (multiarray.scalar, f"{module}.scalar")]
    for name in getattr(np.dtypes, "__all__", []):
        out.append((getattr(np.dtypes, name), f"numpy.dtypes.{name}"))
    return out


def message_hub_globals() -> list:
    """``torch.serialization.safe_globals`` entries for an MMEngine message hub."""
    return [(LoggedScalars, _HISTORY_BUFFER), (_buffer_attribute, "builtins.getattr"),
            (_buffer_attribute, "__builtin__.getattr"), *_numpy_globals()]


def message_hub_names() -> frozenset:
    """The globals ``message_hub_globals`` allows, by their pickled names."""
    return frozenset(e[1] if isinstance(e, tuple) else f"{e.__module__}.{e.__qualname__}"
                     for e in message_hub_globals()) | {"numpy.ndarray", "numpy.dtype"}


def detect_mmengine(ckpt: Mapping) -> bool:
    return "message_hub" in ckpt or "param_schedulers" in ckpt


def _meta(ckpt: Mapping, source: str) -> tuple[dict, int, int]:
    meta = ckpt.get("meta")
    if not isinstance(meta, Mapping):
        what = "no 'meta'" if "meta" not in ckpt else f"a meta of type {type(meta).__name__}"
        raise TorchCheckpointError(f"{source} has {what}; MMEngine's Runner.save_checkpoint "
                                   "writes meta=dict(epoch=..., iter=..., ...)")
    meta = dict(meta)
    for key in ("iter", "epoch"):
        if key not in meta:
            raise TorchCheckpointError(f"{source}: meta has no {key!r} (keys: {sorted(meta)}); "
                                       "MMEngine's Runner.save_checkpoint writes epoch and iter")
    it = iteration(meta["iter"], f"{source}: meta['iter']")
    epoch = meta["epoch"]
    if hasattr(epoch, "item"):
        epoch = epoch.item()
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise TorchCheckpointError(f"{source}: meta['epoch']={meta['epoch']!r} is not an "
                                   "epoch count: it must be an int >= 0")
    return meta, it, epoch


def _loss_scaler(optimizer: dict, source: str) -> dict | None:
    scaler = optimizer.pop("loss_scaler", None)
    if scaler is None or (isinstance(scaler, Mapping) and not scaler):
        return None  # no AMP, or a disabled GradScaler (its state_dict is {})
    if not (isinstance(scaler, Mapping) and {"scale", "_growth_tracker"} <= set(scaler)):
        raise TorchCheckpointError(f"{source}: {SCALER_KEY} must be a GradScaler state_dict "
                                   "(with 'scale' and '_growth_tracker')")
    return dict(scaler)


def read_mmengine(ckpt: Mapping, source: str) -> TorchRun:
    meta, it, epoch = _meta(ckpt, source)
    for key, why in (("state_dict", "the model's parameters"),
                     ("optimizer", "the optimizer state (saved with save_optimizer=False?)")):
        if key not in ckpt:
            raise TorchCheckpointError(f"{source} has no {key!r} (keys: {sorted(ckpt)}): it "
                                       f"holds no {why} to continue from")
    optimizer = ckpt["optimizer"]
    if isinstance(optimizer, Mapping) and "state" not in optimizer and optimizer and all(
            isinstance(v, Mapping) and "state" in v for v in optimizer.values()):
        raise TorchCheckpointError(
            f"{source}: optimizer holds several optimizers ({', '.join(map(str, optimizer))}: "
            "an OptimWrapperDict); one optimizer is continued")
    if not isinstance(optimizer, Mapping):
        optimizer_parts(optimizer, f"{source}: optimizer")  # raises, naming the type
    optimizer = dict(optimizer)
    scaler = _loss_scaler(optimizer, source)
    optimizer.pop("base_param_settings", None)  # the wrapper's hidden group: read by no one
    groups, states = optimizer_parts(optimizer, f"{source}: optimizer")
    schedulers = ckpt.get("param_schedulers")
    if isinstance(schedulers, Mapping):
        raise TorchCheckpointError(f"{source}: param_schedulers is a dict "
                                   f"({', '.join(map(str, schedulers))}): the schedulers of "
                                   "several optimizers; one optimizer is continued")
    if schedulers is not None and not (isinstance(schedulers, (list, tuple)) and all(
            isinstance(s, Mapping) for s in schedulers)):
        raise TorchCheckpointError(f"{source}: param_schedulers must be a list of scheduler "
                                   "state dicts")
    return TorchRun("mmengine", source, it, state_dict_of(ckpt, source), groups, states, scaler,
                    meta, SCALER_KEY, epoch, None if schedulers is None else list(schedulers),
                    _run_length(ckpt.get("message_hub")))


def _run_length(hub) -> tuple[int, int] | None:
    """``(max_iters, max_epochs)`` that ``RuntimeInfoHook`` logged, when both are there."""
    info = hub.get("runtime_info") if isinstance(hub, Mapping) else None
    if not isinstance(info, Mapping):
        return None
    values = [info.get("max_iters"), info.get("max_epochs")]
    values = [v.item() if hasattr(v, "item") else v for v in values]
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        return values[0], values[1]
    return None
