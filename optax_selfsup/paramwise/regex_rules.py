"""MMSelfSup's parameter-wise options: regex rules -> per-parameter option dicts (SPEC 5).

``paramwise_options`` is an ordered dict from regular expression to options.
For every parameter name, each rule whose regex ``re.search``-es the name is
applied in order (later rules override earlier ones); ``X_mult`` sets
``X = optimizer[X] * value``, any other key sets its value directly.
Upstream: ``DefaultOptimizerConstructor`` / ``TransformerFinetuneConstructor``
(MMSelfSup 0.x); the latter's ViT / Swin layer-wise lr decay is ``layer_decay.py``.
"""

from __future__ import annotations

import difflib
import numbers
import re
import warnings

from ..errors import ConfigError, choices
from ..transforms.torch_optimizer import registered_rule
from ..validation import check_number, check_rule_values, check_value

# group options that are not optimizer arguments
GROUP_OPTIONS = ("fix_lr",)


def _rule_of(optimizer_cfg: dict):
    """The registered Rule of ``optimizer_cfg['type']``, or None (no type or an unknown
    one: the builder reports those)."""
    return registered_rule(optimizer_cfg.get("type"))


def _valid_options(rule) -> list[str]:
    numeric = [k for k, v in rule.defaults.items()
               if isinstance(v, numbers.Real) and not isinstance(v, bool)]
    return list(rule.defaults) + list(GROUP_OPTIONS) + [f"{k}_mult" for k in numeric]


def _warn_unknown_options(pattern, options: dict, rule) -> None:
    """A key the optimizer does not take is ignored upstream (a torch param group keeps
    any key); say so, with the closest valid key. (``X_mult`` keys are checked against
    the optimizer config when applied.)"""
    valid = _valid_options(rule)
    for key in options:
        if key in valid or str(key).endswith("_mult"):
            continue
        close = difflib.get_close_matches(str(key), valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        warnings.warn(
            f"optimizer.paramwise_options[{pattern!r}] sets {key!r}, which {rule.name} does "
            f"not take: it has no effect (upstream ignores it too){hint} Valid options: "
            f"{choices(valid)}", UserWarning, stacklevel=5)


def compile_rules(paramwise_options: dict, rule=None):
    """[(pattern, regex, options or None)]; None marks a value that is not a dict."""
    if not isinstance(paramwise_options, dict):
        raise ConfigError(f"optimizer.paramwise_options must be a dict from regex to options, "
                          f"got {type(paramwise_options).__name__}")
    compiled = []
    for pattern, options in paramwise_options.items():
        try:
            regex = re.compile(pattern)
        except (re.error, TypeError) as err:
            raise ConfigError(f"optimizer.paramwise_options: invalid regular expression "
                              f"{pattern!r}: {err}") from None
        if isinstance(options, dict):
            if rule is not None:
                _warn_unknown_options(pattern, options, rule)
        else:
            options = None
        compiled.append((pattern, regex, options))
    return compiled


def _not_a_dict(pattern, value, name=None) -> str:
    where = f"optimizer.paramwise_options[{pattern!r}]={value!r} is not a dict of options"
    mmcv = ("mmcv's paramwise_cfg options (norm_decay_mult, bias_decay_mult, ...) are not "
            "regexes here: MMSelfSup's paramwise_options maps a regex to a dict, e.g. "
            "{'(bn|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0.)}")
    if name is None:
        return (f"{where}. As upstream, its key is read as a regex; it matches no parameter, "
                f"so it has no effect. {mmcv}")
    return (f"{where}, and as a regex it matches the parameter {name!r} (upstream crashes "
            f"there). {mmcv}")


def _multiplied(pattern, key, mult, optimizer_cfg):
    """``X_mult``: ``optimizer[X] * mult``; returns ``(X, value)``."""
    base = key[: -len("_mult")]
    where = f"optimizer.paramwise_options[{pattern!r}].{key}"
    if base not in optimizer_cfg:
        close = difflib.get_close_matches(base, [k for k in optimizer_cfg if k != "type"], n=1)
        hint = f" (did you mean {close[0] + '_mult'!r}?)" if close else ""
        raise ConfigError(
            f"{where}: the optimizer config has no {base!r} to multiply{hint} (it has "
            f"{choices(k for k in optimizer_cfg if k != 'type')})")
    check_number(where, mult)
    value = optimizer_cfg[base]
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ConfigError(f"{where}={mult!r}: optimizer.{base}={value!r} is not a number "
                          "to multiply")
    return base, value * mult


def resolve_paramwise(names, optimizer_cfg: dict, paramwise_options: dict):
    """Per-parameter option dicts (only the keys the rules set) and the unmatched rules.

    With ``optimizer_cfg['type']`` a registered optimizer, every value a rule sets is
    checked against the optimizer's argument ranges (the error names the rule, the
    first parameter it reaches and the value) and options the optimizer does not take
    are reported. A rule whose value is not a dict (an mmcv ``paramwise_cfg`` option
    such as ``norm_decay_mult=0.``) is a warning while it matches nothing, as upstream
    ignores it, and an error once it matches a parameter, where upstream crashes.
    """
    rule = _rule_of(optimizer_cfg)
    rules = compile_rules(paramwise_options, rule)
    matched = set()
    resolved: dict = {}  # (pattern, option key) -> (argument key, value): same for all
    per_param = []
    for name in names:
        group = {}
        for pattern, regex, options in rules:
            if not regex.search(name):
                continue
            if options is None:
                raise ConfigError(_not_a_dict(pattern, paramwise_options[pattern], name))
            matched.add(pattern)
            for option, value in options.items():
                if (pattern, option) not in resolved:
                    resolved[pattern, option] = _resolve(pattern, option, value, optimizer_cfg,
                                                         rule, name)
                key, value = resolved[pattern, option]
                group[key] = value
        per_param.append(group)
    for pattern, _, options in rules:
        if options is None:
            warnings.warn(_not_a_dict(pattern, paramwise_options[pattern]), UserWarning,
                          stacklevel=3)
    unmatched = [p for p, _, o in rules if p not in matched and o is not None]
    return per_param, unmatched


def _resolve(pattern, option, value, optimizer_cfg, rule, name):
    """One option of one rule -> (argument key, value), checked as that argument (a list
    becomes a tuple for tuple arguments such as betas, as JSON / YAML write them)."""
    if option.endswith("_mult"):
        mult = value
        key, value = _multiplied(pattern, option, mult, optimizer_cfg)
        label = f"optimizer.paramwise_options[{pattern!r}].{option}={mult!r} gives {name} {key}"
    else:
        key = option
        label = f"optimizer.paramwise_options[{pattern!r}] gives {name} {key}"
    if rule is None:
        return key, value
    if key in rule.optimizer_wide:
        raise ConfigError(f"{label}: {rule.name} reads {key} once for all parameters (upstream "
                          f"ignores a param group's {key}); set optimizer.{key} instead")
    if key in rule.defaults:
        default = rule.defaults[key]
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        check_value(label, key, value, default, rule.ranges.get(key))
    elif key in GROUP_OPTIONS:
        check_value(label, key, value, False)
    return key, value


def warn_unmatched(unmatched) -> None:
    if unmatched:
        warnings.warn(
            "optimizer.paramwise_options rule(s) matching no parameter: "
            f"{', '.join(map(repr, unmatched))} (upstream silently ignores them; an mmcv "
            "paramwise_cfg key such as 'norm_decay_mult' is not a regex here)",
            UserWarning, stacklevel=3)


def check_optimizer_values(opt: dict) -> dict:
    """The optimizer config's own arguments checked (torch's ranges, one value each);
    lists become tuples for tuple arguments (``betas=[0.9, 0.999]`` from JSON / YAML)."""
    rule = _rule_of(opt)
    if rule is None:
        return opt
    opt = dict(opt)
    for key, default in rule.defaults.items():
        if isinstance(default, tuple) and isinstance(opt.get(key), list):
            opt[key] = tuple(opt[key])
    check_rule_values(rule, {k: v for k, v in opt.items() if k != "type"}, "optimizer.")
    return opt
