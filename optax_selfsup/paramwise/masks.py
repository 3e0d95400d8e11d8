"""MMSelfSup-style rules as optax masks and per-leaf values, for hand-written chains.

``regex_mask(params, r"bias|bn")`` is a pytree of bools (``re.search`` on each
leaf's torch-style name, as the paramwise rules match), ready for
``optax.masked``, ``optax.add_decayed_weights(mask=...)`` or
``oss.scale_by_lars(exclude=...)``. ``paramwise_values(params, rules, key,
default)`` is the per-leaf value of one option after MMSelfSup's
``paramwise_options`` rules (in order, later rules win, ``X_mult`` multiplies
``default``), ready for any per-leaf hyperparameter.
"""

from __future__ import annotations

import re

import jax

from ..errors import ConfigError
from ..names import torch_names
from ..pytrees import unbox
from .regex_rules import resolve_paramwise


def _tree(params, values):
    return jax.tree.unflatten(jax.tree.structure(params), values)


def regex_mask(params, pattern_or_rules, name_map="default"):
    """True for every leaf whose translated name one of the patterns ``re.search``-es.

    ``pattern_or_rules``: a regex, a list of regexes, or a ``paramwise_options``
    dict (its keys are the patterns).
    """
    params = unbox(params)
    patterns = ([pattern_or_rules] if isinstance(pattern_or_rules, str)
                else list(pattern_or_rules))
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError) as err:
            raise ConfigError(f"regex_mask: invalid regular expression {pattern!r}: "
                              f"{err}") from None
    names = torch_names(params, name_map)
    return _tree(params, [any(r.search(n) for r in compiled) for n in names])


def paramwise_values(params, paramwise_options: dict, key: str, default, name_map="default"):
    """Per leaf: ``key``'s value after the rules (``default`` where none sets it)."""
    params = unbox(params)
    names = torch_names(params, name_map)
    if not isinstance(paramwise_options, dict):
        raise ConfigError(f"paramwise_values: paramwise_options must be a dict from regex to "
                          f"options, got {type(paramwise_options).__name__}")
    relevant = {pattern: {k: v for k, v in options.items() if k in (key, f"{key}_mult")}
                for pattern, options in paramwise_options.items() if isinstance(options, dict)}
    groups, _ = resolve_paramwise(names, {key: default}, relevant)
    return _tree(params, [g.get(key, default) for g in groups])
