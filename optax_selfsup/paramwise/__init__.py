"""Per-parameter options: leaf names -> rules (regexes, layer decay) -> per-leaf values."""

from .custom_keys import ParamGroups, mmengine_param_groups
from .layer_depth import layer_decay_param_groups, layer_depth_fn
from .masks import paramwise_values, regex_mask
from .mmengine_groups import optim_wrapper_groups
from .module_kinds import (
    ModuleKinds,
    guess_module_kinds,
    module_kinds_from_linen,
    module_kinds_from_nnx,
)
from .norm_layers import NormLayerWarning

__all__ = ["ModuleKinds", "NormLayerWarning", "ParamGroups", "guess_module_kinds",
           "layer_decay_param_groups", "layer_depth_fn", "mmengine_param_groups",
           "module_kinds_from_linen", "module_kinds_from_nnx", "optim_wrapper_groups",
           "paramwise_values", "regex_mask"]
