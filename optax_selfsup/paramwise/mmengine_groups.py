"""An MMEngine ``optim_wrapper`` config -> the param groups its constructor builds.

``optim_wrapper_groups(cfg['optim_wrapper'], names, shapes, model_cfg=cfg['model'],
default_scope=cfg.get('default_scope'))`` picks the constructor the way MMEngine's registry does
(``constructor`` absent: ``DefaultOptimWrapperConstructor``, :mod:`.custom_keys`;
``'LearningRateDecayOptimWrapperConstructor'``: MMPretrain's under ``default_scope='mmpretrain'``,
:mod:`.layer_depth`; MMSelfSup 1.0's constructor of the same name, under ``'mmselfsup'``, is
refused) and returns a :class:`~.custom_keys.ParamGroups`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import ConfigError
from .custom_keys import ParamGroups, mmengine_param_groups
from .layer_depth import layer_decay_param_groups, resolve_constructor
from .module_kinds import ModuleKinds


def optim_wrapper_groups(optim_wrapper: Mapping, names: Sequence[str],
                         shapes: Sequence[Sequence[int]], *, model_cfg: Mapping | None = None,
                         default_scope: str | None = None, kinds: ModuleKinds | None = None,
                         frozen=(), where: str = "optim_wrapper") -> ParamGroups:
    """The groups of ``optim_wrapper`` (``optimizer``, ``paramwise_cfg``, ``constructor``) for
    torch-style leaf ``names`` with ``shapes``; ``kinds`` as in :mod:`.module_kinds` (guessed
    from the names when None); ``frozen``: names with ``requires_grad=False``."""
    if not isinstance(optim_wrapper, Mapping):
        raise ConfigError(f"{where} must be a dict, got {type(optim_wrapper).__name__}")
    optimizer = optim_wrapper.get("optimizer")
    if not isinstance(optimizer, Mapping):
        raise ConfigError(f"{where}.optimizer must be a dict (type, lr, ...), got {optimizer!r}")
    which = resolve_constructor(optim_wrapper.get("constructor"), default_scope)
    paramwise_cfg = optim_wrapper.get("paramwise_cfg")
    if which == "default":
        return mmengine_param_groups(names, shapes, optimizer, paramwise_cfg, kinds=kinds,
                                     frozen=frozen, where=where)
    if not paramwise_cfg:  # upstream's inherited __call__: one group, get_layer_depth unused
        return mmengine_param_groups(names, shapes, optimizer, paramwise_cfg, where=where)
    return layer_decay_param_groups(names, shapes, optimizer, paramwise_cfg, model_cfg=model_cfg,
                                    kinds=kinds, frozen=frozen, where=where)
