"""Flat layouts: a params tree as one ``[rows, width]`` buffer per dtype (docs/flat-layout.md)."""

from .buffers import Flat, is_flat
from .flat import FlatLayout

__all__ = ["Flat", "FlatLayout", "is_flat"]
