"""The one exception type for bad configurations.

Every message names the offending key (and file, parameter or value) and, where
there is a finite set of valid choices, lists them.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid MMSelfSup-style configuration."""


def choices(values) -> str:
    """Format a collection of valid choices for an error message."""
    return ", ".join(repr(v) for v in sorted(values, key=str))

