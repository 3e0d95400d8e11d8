"""Reading one config dict with validation and a clear error for every bad key."""

from __future__ import annotations

import math
import numbers

from .errors import ConfigError, choices

REQUIRED = object()


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
               high_open=False, integer=False, allow_none=False):
        value = self.get(key, default)
        if value is None and allow_none:
            return None
        kind = "an int" if integer else "a number"
        ok_type = isinstance(value, numbers.Integral if integer else numbers.Real)
        if isinstance(value, bool) or not ok_type:
            self.fail(key, value, f"must be {kind}")
        # written so that NaN fails every bound
        if low is not None and not (value > low if low_open else value >= low):
            self.fail(key, value, f"must be {'>' if low_open else '>='} {low}")
        if high is not None and not (value < high if high_open else value <= high):
            self.fail(key, value, f"must be {'<' if high_open else '<='} {high}")
        if math.isnan(value):
            self.fail(key, value, f"is NaN; it must be {kind}")
        return value

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
