"""Which torch optimizer wrote a state: told from its ``param_groups`` keys.

torch fills every constructor argument into every param group, so the keys of a
group name the optimizer: LARS has ``eta`` (and ``eps``) where SGD has not, the
Adam family ``betas``, Adam and AdamW ``amsgrad``, NAdam ``momentum_decay``, RMSprop
``alpha`` and ``centered``, and so on. An optimizer's signature is its
constructor arguments (``Rule.defaults``) without those that come and go with the
torch version (``maximize``, ``foreach``, ``capturable``, ``differentiable``,
``fused``, ``decoupled_weight_decay``) or that MMSelfSup sets on some groups only
(``lars_exclude``). A checkpoint fits the config's optimizer when the groups hold
its signature and no registered optimizer with a larger signature (LARS for an
SGD config). Adam and AdamW share a signature; torch >= 2.6 tells them apart with
``decoupled_weight_decay`` (compared with the config's when the group has it);
Adamax and RAdam share one too and are told apart by their slots.
"""

from __future__ import annotations

import numpy as np

from ..registry import OPTIMIZERS
from ..transforms.rule import IMPLEMENTATION_ARGS
from .errors import TorchCheckpointError

_VERSION_KEYS = frozenset(IMPLEMENTATION_ARGS) | {"maximize", "decoupled_weight_decay"}
_GROUP_FLAGS = frozenset({"lars_exclude"})
# group keys whose value is fixed by the config (not driven by a schedule): compared
FIXED_KEYS = ("weight_decay", "eps", "eta", "dampening", "nesterov", "amsgrad", "alpha",
              "centered", "rho", "lr_decay", "lambd", "t0", "momentum_decay", "maximize",
              "decoupled_weight_decay", "bias_correction", "grad_averaging", "max_grad_norm",
              "trust_clip", "always_adapt")


def signature(rule) -> frozenset:
    """The keys every param group of ``rule``'s torch optimizer holds. Arguments read once
    for the optimizer (``Rule.shared_args``) may live outside the groups: MMSelfSup's LARS
    keeps ``eps`` on the optimizer."""
    return frozenset(rule.defaults) - _VERSION_KEYS - _GROUP_FLAGS - frozenset(rule.shared_args)


def _registered() -> dict:
    return {name: signature(OPTIMIZERS.get(name, "optimizer.type")) for name in OPTIMIZERS.names()}


def identify(keys) -> list[str]:
    """The registered optimizers whose signature the group keys hold, the most specific
    ones only (LARS, not SGD, for a LARS group)."""
    keys = frozenset(keys)
    fits = {n: s for n, s in _registered().items() if s <= keys}
    return sorted(n for n, s in fits.items() if not any(s < t for t in fits.values()))


def check_optimizer_type(rule, groups: list, source: str) -> None:
    """Refuse a torch state whose ``param_groups`` belong to another optimizer than
    ``rule`` (the config's ``optimizer.type``)."""
    if not groups:
        return
    keys = frozenset.intersection(*(frozenset(g) for g in groups)) - {"params", "param_names"}
    ours = signature(rule)
    found = identify(keys)
    named = " or ".join(found) if found else "none of the registered optimizers"
    if not ours <= keys:
        raise TorchCheckpointError(
            f"{source}: the torch optimizer is {named} (its param_groups lack "
            f"{', '.join(sorted(ours - keys))}, which {rule.name} has); this config has "
            f"optimizer.type={rule.name!r}")
    larger = [n for n in found if signature(OPTIMIZERS.get(n, "optimizer.type")) > ours]
    if larger:
        extra = signature(OPTIMIZERS.get(larger[0], "optimizer.type")) - ours
        raise TorchCheckpointError(
            f"{source}: the torch optimizer is {' or '.join(larger)} (its param_groups have "
            f"{', '.join(sorted(extra))}, which {rule.name} has not); this config has "
            f"optimizer.type={rule.name!r}")


def _config_value(key, hparams, rule_name):
    if key == "decoupled_weight_decay" and rule_name == "AdamW":
        return True  # AdamW is Adam with decoupled weight decay (torch's own flag)
    return hparams.get(key)


def check_group(name, group, hparams, rule_name) -> None:
    """The fixed hyperparameters of the parameter's torch group against the config's."""
    for key in FIXED_KEYS:
        ours = _config_value(key, hparams, rule_name)
        if key not in group or ours is None:
            continue
        theirs = group[key]
        if isinstance(ours, (bool, int, float)) and isinstance(theirs, (bool, int, float)):
            if not np.isclose(float(ours), float(theirs), rtol=1e-6, atol=0.0):
                raise TorchCheckpointError(
                    f"parameter {name!r}: the checkpoint's {rule_name} group has "
                    f"{key}={theirs!r}, this config gives {key}={ours!r}")
