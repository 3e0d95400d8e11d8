"""Reading one config dict with validation and a clear error for every bad key."""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError, choices
from .validation import ITERATION_LIMIT, MAX_FACTOR, kind_of, not_a_number

REQUIRED = object()
ITERATION_LIMIT_TEXT = (f"is past {ITERATION_LIMIT} (2**31 - 1), the most iterations the "
                        "compiled step counts (int32)")


def _bound(x) -> str:
    return {MAX_FACTOR: "2**100", 1 / MAX_FACTOR: "2**-100"}.get(x, repr(x))


def _plain_real(value):
    """A Python int stays an int; any other real number (NumPy ones too) becomes a float."""
    return value if isinstance(value, int) else float(value)


class Options:
    """Hands out the keys of a config dict and remembers which were read.

    ``finish()`` rejects every key that nothing read, listing the valid ones,
    so a misspelt option is never silently ignored.
    """

    def __init__(self, cfg: dict, where: str):
        if not isinstance(cfg, dict):
            raise ConfigError(f"{where} must be a dict, got {type(cfg).__name__}: {cfg!r}")
        self.cfg = dict(cfg)
        self.where = where
        self.read: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.cfg

    def get(self, key: str, default=REQUIRED):
        self.read.add(key)
        if key in self.cfg:
            return self.cfg[key]
        if default is REQUIRED:
            raise ConfigError(f"{self.where}: the key {key!r} is required")
        return default

    def number(self, key, default=REQUIRED, *, low=None, high=None, low_open=False,
               high_open=False, integer=False, allow_none=False, finite=False,
               iterations=False):
        """A number (an int when ``integer``) in the given bounds, as a Python number.

        NumPy numbers are accepted and converted; strings, bools, None (unless
        ``allow_none``) and NaN are refused. ``finite`` refuses +-inf;
        ``iterations`` refuses counts past ``ITERATION_LIMIT`` (int32).
        """
        value = self.get(key, default)
        if value is None and allow_none:
            return None
        return self.check_number(key, value, value, low=low, high=high, low_open=low_open,
                                 high_open=high_open, integer=integer, finite=finite,
                                 iterations=iterations)

    def check_number(self, key, value, shown, *, low=None, high=None, low_open=False,
                     high_open=False, integer=False, finite=False, iterations=False,
                     entry: str = "", hint: str = ""):
        """``number``'s checks on a value already read: ``shown`` is what the message
        quotes as ``key=...``, ``entry`` names the item inside it (``[1]=nan ...``) and
        ``hint`` (if any) ends the message in parentheses."""
        def fail(why):
            item = f"; {entry}={value!r} {why}" if entry else f" {why}"
            raise ConfigError(f"{self.where}.{key}={shown!r}{item}"
                              + (f" ({hint})" if hint else ""))

        bounds = [f"{'>' if low_open else '>='} {_bound(low)}" if low is not None else "",
                  f"{'<' if high_open else '<='} {_bound(high)}" if high is not None else ""]
        bounds = " and ".join(b for b in bounds if b)
        why = not_a_number(value, integer)
        if why:
            fail(f"{why} {bounds}" if why.startswith("is NaN") and bounds else why)
        value = int(value) if integer else _plain_real(value)
        if low is not None and not (value > low if low_open else value >= low):
            fail(f"must be {bounds}")
        if high is not None and not (value < high if high_open else value <= high):
            fail(f"must be {bounds}")
        if finite and math.isinf(value):
            fail("must be finite")
        if iterations and value > ITERATION_LIMIT:
            fail(ITERATION_LIMIT_TEXT)
        return value

    def numbers(self, key, value, **bounds) -> list:
        """Each entry of the list or tuple ``value`` of option ``key``, checked as by
        ``number`` (the message quotes the whole list and names the entry)."""
        return [self.check_number(key, v, value, entry=f"[{i}]", **bounds)
                for i, v in enumerate(value)]

    def flag(self, key, default=REQUIRED) -> bool:
        """True or False (a NumPy bool too); a string such as 'False' is refused."""
        value = self.get(key, default)
        if not isinstance(value, (bool, np.bool_)):
            self.fail(key, value, f"must be True or False, got {kind_of(value, False)}")
        return bool(value)

    def fraction(self, key, default=REQUIRED) -> float:
        """mmcv's ``pct_start`` / ``start_percent``: a float (NumPy ones too) in [0, 1];
        an int is refused as upstream refuses it."""
        value = self.get(key, default)
        if not isinstance(value, (float, np.floating)) or not 0 <= value <= 1:
            self.fail(key, value, "must be a float in [0, 1]")
        return float(value)

    def choice(self, key, valid, default=REQUIRED):
        value = self.get(key, default)
        if value not in valid:
            self.fail(key, value, f"is not one of {choices(valid)}")
        return value

    def fail(self, key, value, why: str):
        raise ConfigError(f"{self.where}.{key}={value!r} {why}")

    def finish(self) -> None:
        unknown = [k for k in self.cfg if k not in self.read]
        if unknown:
            raise ConfigError(
                f"{self.where}: unknown key(s) {choices(unknown)}; valid keys are "
                f"{choices(self.read)}"
            )
