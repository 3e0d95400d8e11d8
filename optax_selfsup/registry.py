"""Name -> factory registries: lr/momentum policies and optimizers.

Users add their own with the ``register_*`` decorators; an unknown name is an
error that lists every registered one.
"""

from __future__ import annotations

from .errors import ConfigError, choices


class Registry:
    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, object] = {}

    def register(self, name: str, item=None, *, force: bool = False):
        """Register ``item`` under ``name``; usable as a decorator without ``item``."""

        def add(obj):
            if name in self._items and not force:
                raise KeyError(f"{self.what} {name!r} is already registered (force=True "
                               "replaces it)")
            self._items[name] = obj
            return obj

        return add if item is None else add(item)

    def get(self, name: str, key: str):
        if name not in self._items:
            raise ConfigError(f"{key}={name!r} is not a known {self.what}; known: "
                              f"{choices(self._items)}")
        return self._items[name]

    def __contains__(self, name) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)


LR_POLICIES = Registry("lr policy")
MOMENTUM_POLICIES = Registry("momentum policy")
OPTIMIZERS = Registry("optimizer")
#: MMEngine ``param_scheduler`` types (MMEngine 0.10 and MMPretrain's weight-decay cosine).
PARAM_SCHEDULERS = Registry("param scheduler")
