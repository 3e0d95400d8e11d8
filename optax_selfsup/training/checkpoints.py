"""Training checkpoints: ``optax_selfsup.checkpoint`` (orbax) plus the run's settings.

A checkpoint is a step directory ``<work_dir>/checkpoints/<iteration>/`` written
by ``optax_selfsup.checkpoint.save_checkpoint``:

- ``params``: the model's variables, ``{'params': ..., 'model_state': ...}``
  (BatchNorm statistics and, for BYOL, the momentum target);
- ``opt_state``: the optimizer state (its clock, accumulation buffer, loss
  scale, slots);
- ``extra`` (JSON): ``iteration`` (iterations done: the data loader's
  position, since batches and augmentations are a function of the iteration)
  and ``run``: the run's settings (the config fitted to the run, model, batch
  size, steps per epoch, epochs, seed, image size).

Resuming refuses a checkpoint whose settings differ from the current run's, or
whose trees do not fit the current model and optimizer, with a ConfigError
naming what differs: resuming under another config or run length would
silently mix two runs.
"""

from __future__ import annotations

import json
import os

from ..errors import ConfigError


def _jsonable(value):
    return json.loads(json.dumps(value, default=repr))


def saved_steps(directory: str) -> list[int]:
    """The steps saved in ``directory``, sorted, read from the folder names orbax gives
    finished steps (``<step>/``; unfinished ones carry a suffix) without importing orbax
    or jax: the quick check before a run. [] when the folder does not exist."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(n) for n in names
                  if n.isdigit() and os.path.isdir(os.path.join(directory, n)))


class Checkpoints:
    def __init__(self, directory: str, max_to_keep: int | None = 3):
        self.directory = os.path.abspath(directory)
        self.max_to_keep = max_to_keep

    def latest(self) -> int | None:
        from ..checkpoint.orbax import latest_step

        return latest_step(self.directory)

    def save(self, iteration: int, state: dict, run: dict) -> None:
        from ..checkpoint.orbax import save_checkpoint

        save_checkpoint(self.directory, iteration,
                        params={"params": state["params"], "model_state": state["model_state"]},
                        opt_state=state["opt_state"], max_to_keep=self.max_to_keep,
                        extra={"iteration": int(iteration), "run": _jsonable(run)},
                        config=run["config"])

    def restore(self, iteration: int, like: dict, run: dict) -> dict:
        """The state saved at ``iteration``, in the structure of ``like``."""
        from ..checkpoint.orbax import CheckpointError, restore_checkpoint

        where = f"{self.directory}/{iteration}"
        try:
            out = restore_checkpoint(
                self.directory, step=iteration, opt_state=like["opt_state"],
                params={"params": like["params"], "model_state": like["model_state"]},
                config=run["config"])
        except CheckpointError as err:
            raise ConfigError(f"cannot resume: {err}") from None
        saved, current = out.extra.get("run", {}), _jsonable(run)
        differ = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if differ:
            details = [f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}"
                       for k in differ if k != "config"]
            if "config" in differ:
                details.append("the config (fitted to the run) differs")
            raise ConfigError(f"cannot resume from {where}: it was saved by a different run "
                              f"({'; '.join(details)}); use the same settings or another "
                              f"--work-dir")
        return {"params": out.params["params"], "model_state": out.params["model_state"],
                "opt_state": out.opt_state, "iteration": int(out.extra["iteration"])}
