"""Checks of optimizer arguments and parameter trees: every bad value a clear ConfigError.

torch.optim refuses out-of-range hyperparameters when an optimizer is built
(``Invalid learning rate: -0.1``); each ``Rule`` declares the same ranges
(``Rule.ranges``) and ``check_value`` applies them. Only concrete Python /
NumPy numbers are checked: a schedule ``count -> value``, a JAX array (a tracer
under ``optax.inject_hyperparams`` included) or any other object passes as is.
A string is never converted (``"1e-4"`` is refused, not read as 1e-4).

``check_params`` refuses what no optimizer can train: an empty tree (torch:
"optimizer got an empty parameter list"), a leaf that is not floating point
(its updates would be truncated to integers), a whole Flax Linen
``variables`` dict where ``variables['params']`` is meant, and a Flax NNX state
holding variables that are not ``nnx.Param`` (batch statistics would get weight
decay).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ConfigError
from .names import leaf_names
from .pytrees import unbox


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval of valid numbers; ``None`` ends are open to infinity. NaN is never in."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, x) -> bool:
        if math.isnan(x):
            return False
        if self.low is not None and not (x > self.low if self.low_open else x >= self.low):
            return False
        return self.high is None or (x < self.high if self.high_open else x <= self.high)

    def __str__(self) -> str:
        if self.low is None and self.high is None:
            return "a number (not NaN)"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return (f"in {'(' if self.low_open else '['}{self.low:g}, "
                f"{self.high:g}{')' if self.high_open else ']'}")


# The compiled step counts iterations in int32 (its clocks and step counters): an
# iteration count in a config must not exceed this, on every backend and under x64 alike.
ITERATION_LIMIT = 2**31 - 1
# The largest factor a schedule may apply to its base value (``value / base``): a float32
# value stays finite for every base below 2**27.
MAX_FACTOR = 2.0**100


def is_concrete_int(value) -> bool:
    """A Python or NumPy integer (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def not_a_number(value, integer: bool = False) -> str | None:
    """Why ``value`` is not a (finite or infinite, never NaN) number / int, or None if it is.

    Strings are never read as numbers and bools are not numbers; NumPy numbers count.
    """
    if integer:
        return None if is_concrete_int(value) else f"must be an int, got {kind_of(value)}"
    if not is_concrete_number(value):
        return f"must be a number, got {kind_of(value)}"
    if math.isnan(float(value)):
        return "is NaN; it must be a number"
    return None


# the default of an argument that has none (``register_optimizer(defaults=dict(lr=REQUIRED))``)
REQUIRED = object()
ANY = Range()
NON_NEGATIVE = Range(0.0)  # torch: lr, eps, weight_decay, momentum, ... >= 0
BETA = Range(0.0, 1.0, high_open=True)  # torch: 0 <= betas[i] < 1


def is_concrete_number(value) -> bool:
    """A Python / NumPy number (a 0-d NumPy array too), not a bool."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _passes_unchecked(value) -> bool:
    """Values only known at run time: schedules and JAX arrays (tracers included)."""
    if isinstance(value, jax.Array):  # tracers are jax.Arrays too
        return True
    return callable(value) and not isinstance(value, (type, Mapping, list, tuple))


def kind_of(value, number: bool = True) -> str:
    """What ``value`` is, for an error message: 'None', 'a string (...)', 'a bool', 'a float64'."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return ("a string (write the number itself, e.g. 0.1, not '0.1')" if number else
                "a string")
    if isinstance(value, (bool, np.bool_)):
        return "a bool"
    return f"a {type(value).__name__}"


def _number_error(name: str, value, valid: Range, why: str = "") -> ConfigError:
    valid_text = "" if valid is ANY else f" {valid}"
    return ConfigError(f"{name}={value!r} must be a number{valid_text}{why}")


def check_number(name: str, value, valid: Range = ANY):
    """Refuse a concrete value that is not a number in ``valid``; others pass as is."""
    if _passes_unchecked(value):
        return value
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return value
    if not is_concrete_number(value):
        raise _number_error(name, value, valid, f", got {kind_of(value)}")
    number = float(value[()] if isinstance(value, np.ndarray) else value)
    if number not in valid:
        raise ConfigError(f"{name}={value!r} must be {valid}" if not math.isnan(number) else
                          f"{name}={value!r} is NaN; it must be {valid}")
    return value


def check_tuple(name: str, value, valid: tuple[Range, ...], key: str = ""):
    """A fixed-length tuple such as ``betas``; each entry checked against its Range
    (``key`` names the entries: ``betas[0]``)."""
    if _passes_unchecked(value) or (isinstance(value, np.ndarray) and value.ndim > 0):
        return value
    n, key = len(valid), key or name
    what = f"a tuple of {n} numbers ({', '.join(f'{key}[{i}] {r}' for i, r in enumerate(valid))})"
    if not isinstance(value, (tuple, list)):
        raise ConfigError(f"{name}={value!r} must be {what}, got {kind_of(value)}")
    if len(value) != n:
        raise ConfigError(f"{name}={value!r} must be {what}, got {len(value)} value(s)")
    for i, (item, rng) in enumerate(zip(value, valid)):
        try:
            check_number(f"{key}[{i}]", item, rng)
        except ConfigError as err:
            raise ConfigError(f"{name}={value!r}: {err}") from None
    return value


def check_flag(name: str, value):
    if _passes_unchecked(value) or isinstance(value, (bool, np.bool_)):
        return value
    raise ConfigError(f"{name}={value!r} must be True or False, got {kind_of(value, False)}")


def check_value(name: str, key: str, value, default, valid=None):
    """One optimizer argument, by the kind of its default (bool: a flag; tuple: a tuple of
    numbers; number or required: a number) and its Range(s) ``valid``. Arguments whose
    default is of any other kind (None, a string) are not checked."""
    if isinstance(default, bool):
        return check_flag(name, value)
    if isinstance(default, tuple) or isinstance(valid, tuple):
        n = len(valid) if isinstance(valid, tuple) else len(default)
        ranges = valid if isinstance(valid, tuple) else (valid or ANY,) * n
        return check_tuple(name, value, ranges, key)
    if isinstance(default, numbers.Real) or valid is not None or _is_required(default):
        return check_number(name, value, valid or ANY)
    return value


def _is_required(default) -> bool:
    return default is REQUIRED


def check_rule_values(rule, values: dict, prefix: str = "optimizer.") -> None:
    """Every argument of ``rule`` in ``values``, one value each (as a config gives them);
    errors read ``{prefix}{key}=value ...``."""
    for key, value in values.items():
        if key in rule.defaults:
            check_value(prefix + key, key, value, rule.defaults[key], rule.ranges.get(key))


def check_per_leaf(rule, key: str, value, prefix: str) -> None:
    """An argument given once, or as a pytree of per-leaf values (each leaf checked,
    named ``{prefix}{key}[leaf.path]``). A tuple of tuples is per leaf (params whose
    root is a tuple), a tuple of numbers one value (``betas=(0.9, 0.999)``)."""
    from .pytrees import is_one_value

    default, valid = rule.defaults[key], rule.ranges.get(key)
    nested = isinstance(value, tuple) and any(isinstance(v, (tuple, list)) for v in value)
    if not nested and is_one_value(value, default if isinstance(default, tuple) else None):
        check_value(prefix + key, key, value, default, valid)
        return
    is_tuple = lambda x: (isinstance(x, tuple) and isinstance(default, tuple)  # noqa: E731
                          and not any(isinstance(v, (tuple, list)) for v in x))
    leaves = jax.tree.leaves(value, is_leaf=is_tuple)
    names = leaf_names(jax.tree.map(lambda _: 0, value, is_leaf=is_tuple))
    for name, leaf in zip(names, leaves):
        check_value(f"{prefix}{key}[{name}]", key, leaf, default, valid)


def check_params(params, where: str = "params") -> None:
    """Refuse a params tree no optimizer can train, naming the offending leaf.

    - a Flax Linen ``variables`` dict (top-level ``'params'`` beside other collections
      such as ``'batch_stats'``): pass ``variables['params']``;
    - a Flax NNX state with variables that are not ``nnx.Param`` (``nnx.state(model)``,
      ``nnx.split(model)[1]``: ``BatchStat``, ``Cache``, RNG state): pass
      ``nnx.state(model, nnx.Param)``;
    - no leaves at all (torch: "optimizer got an empty parameter list");
    - a leaf whose dtype is not floating point (int, bool, complex, strings):
      its updates would be truncated or meaningless.
    """
    if isinstance(params, Mapping) and "params" in params and len(params) > 1:
        others = sorted(str(k) for k in params if k != "params")
        raise ConfigError(
            f"{where} looks like a whole Flax Linen variables dict (top-level 'params' beside "
            f"{', '.join(map(repr, others))}); pass variables['params'] to the optimizer and "
            "keep the other collections out of it")
    _check_variable_types(params, where)
    params = unbox(params)
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ConfigError(f"{where} has no leaves: there is nothing to optimize (torch: "
                          "'optimizer got an empty parameter list'); got "
                          f"{_short(params)}")
    for name, leaf in zip(leaf_names(params), leaves):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            dtype = np.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ConfigError(
                f"{where}: the leaf {name!r} has dtype {np.dtype(dtype).name}; optimizers "
                "train floating-point parameters only (float32, bfloat16, float16, float64): "
                "cast it, or keep it out of the params tree")


def _check_variable_types(params, where: str) -> None:
    """Refuse Flax NNX variables other than ``nnx.Param`` (and its subclasses)."""
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - flax is a dependency
        return
    is_var = lambda x: isinstance(x, nnx.Variable)  # noqa: E731
    found = [(path, type(x).__name__)
             for path, x in jax.tree_util.tree_flatten_with_path(params, is_leaf=is_var)[0]
             if is_var(x) and not isinstance(x, nnx.Param)]
    if not found:
        return
    names = [".".join(_key_str(k) for k in path) for path, _ in found]
    shown = ", ".join(f"{n!r} ({t})" for n, (_, t) in zip(names[:4], found[:4]))
    more = f" and {len(found) - 4} more" if len(found) > 4 else ""
    raise ConfigError(
        f"{where} holds Flax NNX variables that are not nnx.Param: {shown}{more}; the "
        "optimizer would update them as parameters (weight decay included): pass "
        "nnx.state(model, nnx.Param), or the Param state of nnx.split(model, nnx.Param, ...)")


def _key_str(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


# the largest float32; a loss scale (a float32 number) or a factor past it is inf
FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_problem(value) -> str | None:
    """Why the positive number ``value`` has no positive finite float32 value (it
    overflows to inf or rounds to 0), or None where it has one."""
    with np.errstate(over="ignore", under="ignore"):
        f = np.float32(value)
    if not np.isfinite(f):
        return ("does not fit float32 (it overflows to inf; the largest float32 is "
                f"{FLOAT32_MAX:.8g})")
    if f == 0 and value != 0:
        return ("does not fit float32 (it rounds to 0; the smallest positive float32 is "
                f"{float(np.finfo(np.float32).smallest_subnormal):.3g})")
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
