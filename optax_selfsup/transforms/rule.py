"""An optimizer as a per-tensor update rule with torch's argument names and defaults.

A ``Rule`` holds what one ``torch.optim`` class does to one parameter tensor:

    step(g, p, slots, h, t) -> (new_p, new_slots)

``g``/``p`` are the gradient and the parameter, ``slots`` the tensor's state
(momentum buffers, second moments, ... as a dict), ``h`` the tensor's
hyperparameters (a dict keyed by torch's argument names; ``lr`` and the
momentum follow their schedules) and ``t`` the tensor's own step count after
this update (1 at its first update; a skipped update does not count, unless the
rule counts steps per group: ``group_step``), or None
for a tensor whose rule does not read it (``reads_step``): the state then keeps
no step count for that tensor (torch's SGD keeps none either). The generic
transformation (``torch_optimizer.py``) maps it over the leaves.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable

import jax.numpy as jnp

from ..errors import ConfigError
from ..validation import REQUIRED, check_per_leaf

# torch arguments that select an implementation, never the maths
IMPLEMENTATION_ARGS = ("foreach", "capturable", "differentiable", "fused")


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    defaults: dict
    step: Callable
    init_slots: Callable = lambda p, h: {}
    momentum_key: str | None = None  # 'momentum', 'betas' (betas[0]) or None
    validate: Callable = lambda h: None  # per tensor, on concrete values: cross-argument checks
    flags: tuple[str, ...] = ()  # boolean arguments (static per tensor)
    # per tensor, on its hyperparameters: whether ``step`` reads ``t``. False keeps no
    # step count in the state for that tensor (one buffer and one kernel less per tensor)
    reads_step: Callable = lambda h: True
    # valid values per argument (torch's constructor checks): a Range, or a tuple of
    # Ranges for a tuple argument such as betas; see optax_selfsup/validation.py
    ranges: dict = dataclasses.field(default_factory=dict)
    # arguments the optimizer reads once for all param groups (the constructor's value,
    # not the group's): MMSelfSup LARS ``eps``, torch Adagrad ``initial_accumulator_value``,
    # MMPretrain Lamb ``max_grad_norm``. A paramwise rule setting one is refused (upstream
    # would ignore it), and per-leaf values must all be equal (``check_shared_args``)
    shared_args: tuple[str, ...] = ()
    # Cross-tensor parts (Lamb's global gradient clip). ``prepare(grads, masks, hs, norms)
    # -> (grads, norms)`` runs over all leaves before the per-tensor steps (``masks``: the
    # grad_mask leaves or None; ``norms``: each gradient's 2-norm when a fused clip knows it,
    # else None)
    prepare: Callable | None = None
    # True: ``t`` counts the updates, also those where the tensor had no gradient (torch
    # keeps it per param group, as Lamb does); False: the tensor's own updates
    group_step: bool = False
    # True: ``step`` reads nothing across a tensor except through ``tensor_norm`` (so it
    # runs unchanged on a run of rows of the flat layout, docs/flat-layout.md); the
    # built-in rules are; ``layout='flat'`` refuses a rule that does not say so
    elementwise: bool = False
    # flags ``step`` also reads as a per-row boolean array (``jnp.where``), so tensors that
    # differ only there share one run of rows on the flat layout (LARS ``lars_exclude``)
    row_flags: tuple[str, ...] = ()


# ``h[TENSOR_NORM]``: set by the flat layout, a function returning each element's tensor's
# 2-norm (broadcast per row); absent per tensor
TENSOR_NORM = "__tensor_norm__"


def tensor_norm(x, h):
    """The 2-norm of the tensor ``x`` belongs to: ``||x|| = sqrt(sum(x**2))`` over the whole
    tensor (a 0-d array per tensor; per row on the flat layout). Rules read norms through
    this so they run on both layouts."""
    fn = h.get(TENSOR_NORM)
    return jnp.linalg.norm(x.ravel()) if fn is None else fn(x)


def one_minus_pow(beta, t):
    """``1 - beta**t`` without cancellation (``-expm1(t log beta)``).

    With a constant ``beta`` its log is taken in float64 on the host.
    """
    if isinstance(beta, (int, float)):
        if beta <= 0:
            return 1.0 - jnp.power(beta, t)
        return -jnp.expm1(t * math.log(beta))
    return -jnp.expm1(t * jnp.log(beta))


def power(beta, t):
    if isinstance(beta, (int, float)) and beta > 0:
        return jnp.exp(t * math.log(beta))
    return jnp.power(beta, t)


def lerp(start, end, weight):
    """torch ``start.lerp_(end, weight)``: the formula switches at weight 0.5."""
    diff = end - start
    if isinstance(weight, (int, float)):
        return start + weight * diff if weight < 0.5 else end - diff * (1 - weight)
    return jnp.where(weight < 0.5, start + weight * diff, end - diff * (1 - weight))


def mul_(x, s):
    """torch's in-place ``x.mul_(s)``: ``x * s`` rounded to its dtype before anything is
    added to it.

    XLA's CPU backend lets LLVM fuse a multiply into the add or subtract that consumes
    it (one fused multiply-add, one rounding), and the same sign of rounding error at
    every step adds up: ``p * (1 - lr*wd) - u`` fused drifted from torch's AdamW by
    about 3e-8 per step. A select between the multiply and the add keeps them apart
    (x86 masks it into the multiply itself). Equal to ``x * s`` wherever ``s >= 0``
    (decay factors, betas, momenta): where ``x`` is a zero it returns that zero, which
    ``x * s`` is too, sign included.
    """
    return jnp.where(x == 0, x, x * s)


def addcdiv(x, value, t1, t2):
    """torch's ``x.addcdiv_(t1, t2, value=value)``: ``x + (value * t1) / t2``, in that
    order of rounding (the quotient, not a product, meets the add: nothing to fuse)."""
    return x + (value * t1) / t2


def sign_flip(g, h):
    return -g if h.get("maximize", False) else g


def coupled_decay(g, p, h):
    """``g + wd * p`` (torch's L2 weight decay); skipped when wd is a static 0."""
    wd = h.get("weight_decay", 0)
    if isinstance(wd, (int, float)) and wd == 0:
        return g
    return g + wd * p


def check_shared_args(rule: Rule, hs) -> None:
    """ConfigError when an optimizer-wide argument differs between tensors (upstream would
    use the constructor's value for every group, ignoring the groups' own)."""
    for key in rule.shared_args:
        values = {(float(h[key]) if isinstance(h[key], numbers.Real) else id(h[key]))
                  for h in hs}
        if len(values) > 1:
            raise ConfigError(
                f"{rule.name}: {key} is optimizer-wide (upstream reads the constructor's value "
                f"for every param group and ignores a group's own), but it differs between "
                f"parameters ({', '.join(sorted(map(str, values)))}); give one value")


def check_arguments(rule: Rule, hparams: dict, prefix: str | None = None) -> dict:
    """torch's argument names and defaults; TypeError naming a bad keyword.

    Values are checked against ``rule.ranges`` and the kind of their default (one
    value, or each leaf of a per-leaf pytree); a bad one is a ConfigError reading
    ``{prefix}{key}=value must be ...`` (``prefix`` defaults to ``'<rule name>: '``).
    Schedules and JAX arrays are not checked (their values are known at run time).
    """
    unknown = [k for k in hparams if k not in rule.defaults and k not in IMPLEMENTATION_ARGS]
    if unknown:
        raise TypeError(f"{rule.name} got unexpected keyword argument(s) "
                        f"{', '.join(map(repr, unknown))}; it takes "
                        f"{', '.join(map(repr, rule.defaults))}")
    values = {k: hparams.get(k, v) for k, v in rule.defaults.items()}
    missing = [k for k, v in values.items() if v is REQUIRED]
    if missing:
        raise TypeError(f"{rule.name} is missing the required argument(s) "
                        f"{', '.join(map(repr, missing))}")
    prefix = f"{rule.name}: " if prefix is None else prefix
    for key in hparams:
        if key in rule.defaults:
            check_per_leaf(rule, key, hparams[key], prefix)
    return values
