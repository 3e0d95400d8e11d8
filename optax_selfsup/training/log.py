"""What a training run reports: console lines, a JSON-lines log file, a progress bar.

Like mmcv 1.x's ``TextLoggerHook``, a record is written every ``interval``
iterations of an epoch and at the last iteration of each epoch; ``loss``,
``grad_norm``, ``time`` (seconds per iteration) and ``data_time`` are averaged
over the iterations since the previous record, ``lr`` and ``momentum`` are the
values in force at the logged iteration. ``epoch`` and ``iter`` count from 1
(``iter`` within the epoch), as in mmcv's ``log.json``.

The file is ``log.json`` in the work dir, one JSON object per line::

    {"mode": "train", "epoch": 1, "iter": 10, "lr": 0.0123, "momentum": 0.9,
     "grad_norm": 3.2, "loss": 4.51, "time": 0.081, "data_time": 0.002}

with ``"lr_groups"`` (one value per distinct lr, keyed by its first parameter's
name) when parameter groups have different lrs, and a last ``"mode": "val"``
record with the linear-probe accuracy. A resumed run appends to the same file.
"""

from __future__ import annotations

import json
import math
import os


def _number(value):
    if isinstance(value, int):  # counts (``updates``) stay integers
        return value
    value = float(value)
    return value if math.isfinite(value) else str(value)


class TrainLog:
    """Averages per-iteration values and writes a record when asked."""

    def __init__(self, path: str, *, append: bool, echo=print):
        self.path = path
        self.echo = echo
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._file = open(path, "a" if append else "w")  # noqa: SIM115 - closed in close()
        self._sums: dict[str, float] = {}
        self._count = 0

    def add(self, **values) -> None:
        for key, value in values.items():
            if value is not None:
                self._sums[key] = self._sums.get(key, 0.0) + float(value)
        self._count += 1

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def flush_train(self, *, epoch: int, inner_iter: int, steps_per_epoch: int, hparams: dict):
        """Write the averaged record of the iterations since the last one (``inner_iter`` is
        1-based within ``epoch``, 1-based)."""
        averages = {k: v / max(self._count, 1) for k, v in self._sums.items()}
        record = {"mode": "train", "epoch": epoch, "iter": inner_iter}
        record.update({k: _number(v) for k, v in hparams.items() if k != "lr_groups"})
        for key in ("grad_norm", "loss", "time", "data_time"):
            if key in averages:
                record[key] = _number(averages[key])
        if hparams.get("lr_groups"):
            record["lr_groups"] = {k: _number(v) for k, v in hparams["lr_groups"].items()}
        self.write(record)
        self._sums, self._count = {}, 0
        shown = ", ".join(f"{k}: {_format(record[k])}" for k in
                          ("lr", "momentum", "loss_scale", "grad_norm", "loss", "time")
                          if k in record)
        self.echo(f"Epoch [{epoch}][{inner_iter}/{steps_per_epoch}]\t{shown}")
        return record

    def close(self) -> None:
        self._file.close()


def _format(value) -> str:
    if isinstance(value, str):
        return value
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.3e}"
    return f"{value:.4f}"


class Progress:
    """A rich progress bar over the run's iterations (or nothing when disabled); ``echo``
    prints above the bar."""

    def __init__(self, total: int, start: int, enabled: bool):
        self._bar = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("[progress.description]{task.description}"),
                                     BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
            self._task = self._bar.add_task("train", total=total, completed=start, status="")

    def __enter__(self):
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.stop()

    def advance(self, status: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, status=status)

    def echo(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, flush=True)
