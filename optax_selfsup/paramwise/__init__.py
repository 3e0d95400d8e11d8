"""Per-parameter options: leaf names -> rules (regexes, layer decay) -> per-leaf values."""

from .masks import paramwise_values, regex_mask
from .norm_layers import NormLayerWarning

__all__ = ["NormLayerWarning", "paramwise_values", "regex_mask"]
