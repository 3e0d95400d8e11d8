"""torch.optim SGD, RMSprop, Rprop, ASGD, Adagrad, Adadelta and MMSelfSup's LARS as rules.

Formulas follow torch 2.x's single-tensor implementations (``torch/optim/*.py``)
and MMSelfSup 0.x ``mmselfsup/core/optimizer/optimizers.py`` (LARS).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..validation import NON_NEGATIVE, Range
from .lars import lars_trust_ratio
from .rule import REQUIRED, TENSOR_NORM, Rule, coupled_decay, lerp, mul_, sign_flip

# torch's constructor checks (and MMSelfSup's for LARS)
_SGD_RANGES = dict(lr=NON_NEGATIVE, momentum=NON_NEGATIVE, weight_decay=NON_NEGATIVE)


def _is_zero(x):
    return isinstance(x, (int, float)) and x == 0


def _momentum_buffer(d, buf, h, t):
    """torch's buffer: ``b = d`` at the tensor's first step, then ``m*b + (1-damp)*d``.

    The buffer starts at zeros and stays zero until the tensor's first step, so with
    ``dampening = 0`` (a static 0) ``m*b + d`` is exactly ``d`` there and no select
    on the step count is needed (fewer ops to compile per tensor).
    """
    m, damp = h["momentum"], h["dampening"]
    if _is_zero(damp):
        buf = m * buf + d
    else:
        buf = jnp.where(t == 1, d, m * buf + (1 - damp) * d)
    return (d + m * buf if h["nesterov"] else buf), buf


def _dampened(h):
    """Whether the buffer needs the step count: only a dampening that is not a static 0
    tells the first step (``b = d``) from the others."""
    return not _is_zero(h["dampening"])


def _check_nesterov(h, name):
    if h["nesterov"] and (not h["momentum"] > 0 or h["dampening"] != 0):
        raise ConfigError(f"{name}: nesterov=True requires momentum > 0 and dampening = 0 "
                          f"(got momentum={h['momentum']}, dampening={h['dampening']})")


def _buffer_slots(p, h):
    return {} if _is_zero(h["momentum"]) else {"momentum_buffer": jnp.zeros_like(p)}


def sgd_step(g, p, slots, h, t):
    """torch SGD: ``d = g + wd*p``; buffer; ``p -= lr * d`` (lr after the buffer)."""
    d = coupled_decay(sign_flip(g, h), p, h)
    if "momentum_buffer" in slots:
        d, buf = _momentum_buffer(d, slots["momentum_buffer"], h, t)
        slots = {"momentum_buffer": buf}
    return p - h["lr"] * d, slots


SGD = Rule(
    "SGD",
    dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    sgd_step, _buffer_slots, momentum_key="momentum",
    validate=lambda h: _check_nesterov(h, "SGD"), flags=("nesterov", "maximize"),
    ranges=_SGD_RANGES, reads_step=_dampened)


def lars_step(g, p, slots, h, t):
    """MMSelfSup LARS: ``local = eta*||p|| / (||g|| + wd*||p|| + eps)`` (1 when a norm
    is 0 or the tensor is lars_exclude); ``d = (g + wd*p) * local * lr``; buffer as SGD;
    ``p -= d`` (lr before the buffer)."""
    wd, excluded = h["weight_decay"], h["lars_exclude"]
    if isinstance(excluded, (bool, np.bool_)) and excluded:
        local = 1.0
    else:
        local = lars_trust_ratio(g, p, wd, h["eta"], h["eps"], h.get("grad_norm"),
                                 h.get(TENSOR_NORM))
        if not isinstance(excluded, (bool, np.bool_)):  # per row (the flat layout)
            local = jnp.where(excluded, jnp.ones((), local.dtype), local)
    d = coupled_decay(g, p, h) * (local * h["lr"])
    if "momentum_buffer" in slots:
        d, buf = _momentum_buffer(d, slots["momentum_buffer"], h, t)
        slots = {"momentum_buffer": buf}
    return p - d, slots


LARS = Rule(
    "LARS",
    dict(lr=REQUIRED, momentum=0.0, weight_decay=0.0, dampening=0.0, eta=1e-3, nesterov=False,
         eps=1e-8, lars_exclude=False),
    lars_step, _buffer_slots, momentum_key="momentum",
    validate=lambda h: _check_nesterov(h, "LARS"), flags=("nesterov", "lars_exclude"),
    row_flags=("lars_exclude",),
    ranges=dict(_SGD_RANGES, eta=NON_NEGATIVE), reads_step=_dampened,
    shared_args=("eps",))  # MMSelfSup's LARS keeps one ``self.eps``


def rmsprop_step(g, p, slots, h, t):
    """torch RMSprop: eps outside the sqrt; centered; momentum buffer from zeros with
    the lr after the buffer."""
    g = coupled_decay(sign_flip(g, h), p, h)
    alpha = h["alpha"]
    sq = slots["square_avg"] * alpha + (1 - alpha) * g * g
    new = {"square_avg": sq}
    if h["centered"]:
        gav = lerp(slots["grad_avg"], g, 1 - alpha)
        new["grad_avg"] = gav
        avg = jnp.sqrt(sq - gav * gav) + h["eps"]
    else:
        avg = jnp.sqrt(sq) + h["eps"]
    if "momentum_buffer" in slots:
        buf = slots["momentum_buffer"] * h["momentum"] + g / avg
        new["momentum_buffer"] = buf
        return p - h["lr"] * buf, new
    return p - h["lr"] * (g / avg), new


def _rmsprop_slots(p, h):
    slots = {"square_avg": jnp.zeros_like(p)}
    if h["centered"]:
        slots["grad_avg"] = jnp.zeros_like(p)
    if not _is_zero(h["momentum"]):
        slots["momentum_buffer"] = jnp.zeros_like(p)
    return slots


RMSprop = Rule(
    "RMSprop",
    dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
         maximize=False),
    rmsprop_step, _rmsprop_slots, momentum_key="momentum", flags=("centered", "maximize"),
    ranges=dict(_SGD_RANGES, eps=NON_NEGATIVE, alpha=NON_NEGATIVE), reads_step=lambda h: False)


def rprop_step(g, p, slots, h, t):
    """torch Rprop: per-element step sizes (initialised to the lr at the first step)
    grow by etas[1] on agreeing signs, shrink by etas[0] on flips (then g = 0)."""
    g = sign_flip(g, h)
    eta_minus, eta_plus = h["etas"]
    lo, hi = h["step_sizes"]
    size = jnp.where(t == 1, jnp.zeros_like(p) + h["lr"], slots["step_size"])
    s = jnp.sign(g * slots["prev"])
    factor = jnp.where(s > 0, eta_plus, jnp.where(s < 0, eta_minus, 1.0))
    size = jnp.clip(size * factor, lo, hi)
    g = jnp.where(factor == eta_minus, 0.0, g)
    return p - jnp.sign(g) * size, {"prev": g, "step_size": size}


Rprop = Rule(
    "Rprop", dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0), maximize=False),
    rprop_step, lambda p, h: {"prev": jnp.zeros_like(p), "step_size": jnp.zeros_like(p)},
    flags=("maximize",),
    # torch: 0 < etas[0] < 1 < etas[1]
    ranges=dict(lr=NON_NEGATIVE, etas=(Range(0.0, 1.0, True, True), Range(1.0, low_open=True))))


def asgd_step(g, p, slots, h, t):
    """torch ASGD: ``p = p*(1 - lambd*eta) - eta*g`` with eta from the previous step
    (the lr at the first); then eta, mu and the average ax are updated. eta and mu
    are stored in float32 as torch stores them."""
    g = coupled_decay(sign_flip(g, h), p, h)
    lr, lambd = h["lr"], h["lambd"]
    eta = jnp.where(t == 1, lr.astype(jnp.float32), slots["eta"]).astype(p.dtype)
    mu = jnp.where(t == 1, 1.0, slots["mu"]).astype(p.dtype)
    # torch: p.mul_(1 - lambd*eta) rounds, then add_(g, alpha=-eta) is one fused multiply-add
    new_p = mul_(p, 1 - lambd * eta) - eta * g
    ax = jnp.where(mu != 1, slots["ax"] + mul_(new_p - slots["ax"], mu), new_p)
    new_eta = lr / jnp.power(1 + lambd * lr * t, h["alpha"])
    new_mu = 1 / jnp.maximum(1.0, t - h["t0"])
    # torch keeps eta and mu in float32 scalar tensors whatever the param dtype
    return new_p, {"eta": new_eta.astype(jnp.float32), "mu": new_mu.astype(jnp.float32),
                   "ax": ax}


def _asgd_slots(p, h):
    return {"eta": jnp.zeros((), jnp.float32), "mu": jnp.ones((), jnp.float32),
            "ax": jnp.zeros_like(p)}


ASGD = Rule(
    "ASGD", dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False),
    asgd_step, _asgd_slots, flags=("maximize",),
    ranges=dict(lr=NON_NEGATIVE, weight_decay=NON_NEGATIVE))


def adagrad_step(g, p, slots, h, t):
    """torch Adagrad: ``clr = lr / (1 + (t-1)*lr_decay)``; ``sum += g^2``;
    ``p -= clr * g / (sqrt(sum) + eps)``."""
    g = coupled_decay(sign_flip(g, h), p, h)
    clr = h["lr"] / (1 + (t - 1) * h["lr_decay"])
    total = slots["sum"] + g * g
    return p - clr * (g / (jnp.sqrt(total) + h["eps"])), {"sum": total}


Adagrad = Rule(
    "Adagrad",
    dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
         maximize=False),
    adagrad_step,
    lambda p, h: {"sum": jnp.full_like(p, h["initial_accumulator_value"])},
    flags=("maximize",),
    ranges=dict(lr=NON_NEGATIVE, lr_decay=NON_NEGATIVE, weight_decay=NON_NEGATIVE,
                initial_accumulator_value=NON_NEGATIVE, eps=NON_NEGATIVE),
    shared_args=("initial_accumulator_value",))  # torch fills ``sum`` from the constructor's


def adadelta_step(g, p, slots, h, t):
    """torch Adadelta: ``delta = sqrt(acc + eps) / sqrt(sq + eps) * g``; ``p -= lr*delta``."""
    g = coupled_decay(sign_flip(g, h), p, h)
    rho, eps = h["rho"], h["eps"]
    sq = slots["square_avg"] * rho + (1 - rho) * g * g
    delta = jnp.sqrt(slots["acc_delta"] + eps) / jnp.sqrt(sq + eps) * g
    acc = slots["acc_delta"] * rho + (1 - rho) * delta * delta
    return p - h["lr"] * delta, {"square_avg": sq, "acc_delta": acc}


Adadelta = Rule(
    "Adadelta", dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False),
    adadelta_step,
    lambda p, h: {"square_avg": jnp.zeros_like(p), "acc_delta": jnp.zeros_like(p)},
    flags=("maximize",), reads_step=lambda h: False,
    ranges=dict(lr=NON_NEGATIVE, rho=Range(0.0, 1.0), eps=NON_NEGATIVE,
                weight_decay=NON_NEGATIVE))

RULES = (SGD, LARS, RMSprop, Rprop, ASGD, Adagrad, Adadelta)
