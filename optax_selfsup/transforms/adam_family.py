"""torch.optim Adam, AdamW, Adamax, NAdam and RAdam as rules (torch 2.x single-tensor maths).

``betas[0]`` is the momentum that momentum schedules drive; bias corrections use
its current value, as torch does.

Low-precision parameters (float16, bfloat16): torch keeps the moments in the
parameter's dtype and forms the denominator ``sqrt(v)/sqrt(1-beta2^t) + eps``
there too, so in float16 the default ``eps=1e-8`` (below float16's smallest
subnormal, 6e-8) rounds away. The moments and denominators here are rounded to
the stored dtype at the same places, so the results are torch's: an exactly-zero
gradient gives ``0/0 = NaN`` and a second moment that underflows to 0 gives
``inf``, as in torch (parity_tests/test_float16.py). Keep float32 parameters
(or an eps float16 can hold, >= 6e-8) to train with Adam in half precision.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..validation import BETA, NON_NEGATIVE
from .rule import Rule, addcdiv, coupled_decay, lerp, mul_, one_minus_pow, power, sign_flip

_BASE = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False)
# torch's constructor checks
_RANGES = dict(lr=NON_NEGATIVE, eps=NON_NEGATIVE, weight_decay=NON_NEGATIVE, betas=(BETA, BETA))


def _decay(g, p, h, decoupled):
    """Coupled (``g + wd*p``) or decoupled (``p *= 1 - lr*wd``) weight decay."""
    if decoupled:
        wd = h["weight_decay"]
        if isinstance(wd, (int, float)) and wd == 0:
            return g, p
        return g, mul_(p, 1 - h["lr"] * wd).astype(p.dtype)  # torch: p.mul_(...)
    return coupled_decay(g, p, h), p


def _moments(g, slots, beta1, beta2):
    """The new first and second moments, rounded to their stored dtype as torch's
    in-place updates are: ``v.mul_(beta2)`` rounds, then ``addcmul_`` adds
    ``((1 - beta2) * g) * g`` in one fused multiply-add (torch's CPU kernel; the lerp's
    are fused too)."""
    m = lerp(slots["exp_avg"], g, 1 - beta1)
    v = mul_(slots["exp_avg_sq"], beta2).astype(slots["exp_avg_sq"].dtype) + (1 - beta2) * g * g
    return m.astype(slots["exp_avg"].dtype), v.astype(slots["exp_avg_sq"].dtype)


def _plus_eps(x, eps, dtype):
    """torch's ``x.add_(eps)`` on a tensor of the stored dtype: ``x`` rounded to it, then
    the sum rounded again (in float16 an eps below 6e-8 adds nothing)."""
    return (x.astype(dtype) + eps).astype(dtype)


def _adam_slots(p, h):
    slots = {"exp_avg": jnp.zeros_like(p), "exp_avg_sq": jnp.zeros_like(p)}
    if h.get("amsgrad", False):
        slots["max_exp_avg_sq"] = jnp.zeros_like(p)
    return slots


def _adam(decoupled_default):
    def step(g, p, slots, h, t):
        beta1, beta2 = h["betas"]
        g, p = _decay(sign_flip(g, h), p, h, h.get("decoupled_weight_decay", decoupled_default))
        m, v = _moments(g, slots, beta1, beta2)
        new = {"exp_avg": m, "exp_avg_sq": v}
        step_size = h["lr"] / one_minus_pow(beta1, t)
        bc2_sqrt = jnp.sqrt(one_minus_pow(beta2, t))
        if h["amsgrad"]:
            v = jnp.maximum(slots["max_exp_avg_sq"], v)
            new["max_exp_avg_sq"] = v
        denom = _plus_eps(jnp.sqrt(v) / bc2_sqrt, h["eps"], v.dtype)
        return addcdiv(p, -step_size, m, denom), new

    return step


Adam = Rule("Adam", dict(lr=1e-3, **_BASE, amsgrad=False, decoupled_weight_decay=False),
            _adam(False), _adam_slots, momentum_key="betas",
            flags=("amsgrad", "maximize", "decoupled_weight_decay"), ranges=_RANGES)
AdamW = Rule("AdamW", dict(lr=1e-3, **{**_BASE, "weight_decay": 1e-2}, amsgrad=False),
             _adam(True), _adam_slots, momentum_key="betas", flags=("amsgrad", "maximize"),
             ranges=_RANGES)


def adamax_step(g, p, slots, h, t):
    """torch Adamax: ``u = max(beta2*u, |g| + eps)``; ``p -= lr/(1-beta1^t) * m / u``."""
    beta1, beta2 = h["betas"]
    g = coupled_decay(sign_flip(g, h), p, h)
    m = lerp(slots["exp_avg"], g, 1 - beta1).astype(slots["exp_avg"].dtype)
    dtype = slots["exp_inf"].dtype
    u = jnp.maximum((slots["exp_inf"] * beta2).astype(dtype),
                    _plus_eps(jnp.abs(g), h["eps"], dtype))
    clr = h["lr"] / one_minus_pow(beta1, t)
    return addcdiv(p, -clr, m, u), {"exp_avg": m, "exp_inf": u}


Adamax = Rule("Adamax", dict(lr=2e-3, **_BASE), adamax_step,
              lambda p, h: {"exp_avg": jnp.zeros_like(p), "exp_inf": jnp.zeros_like(p)},
              momentum_key="betas", flags=("maximize",), ranges=_RANGES)


def nadam_step(g, p, slots, h, t):
    """torch NAdam with momentum_decay's mu schedule and the running mu product."""
    beta1, beta2 = h["betas"]
    g, p = _decay(sign_flip(g, h), p, h, h["decoupled_weight_decay"])
    decay = h["momentum_decay"]
    mu = beta1 * (1 - 0.5 * power(0.96, t * decay))
    mu_next = beta1 * (1 - 0.5 * power(0.96, (t + 1) * decay))
    # torch keeps mu_product in a float32 scalar tensor whatever the param dtype
    mu_product = slots["mu_product"] * jnp.asarray(mu).astype(jnp.float32)
    m, v = _moments(g, slots, beta1, beta2)
    denom = _plus_eps(jnp.sqrt((v / one_minus_pow(beta2, t)).astype(v.dtype)), h["eps"], v.dtype)
    lr, prod = h["lr"], mu_product.astype(p.dtype)
    # two in-place updates in torch: the parameter is rounded in between
    new_p = addcdiv(p, -lr * (1 - mu) / (1 - prod), g, denom).astype(p.dtype)
    new_p = addcdiv(new_p, -lr * mu_next / (1 - prod * mu_next), m, denom)
    return new_p, {"exp_avg": m, "exp_avg_sq": v, "mu_product": mu_product}


NAdam = Rule(
    "NAdam", dict(lr=2e-3, **_BASE, momentum_decay=4e-3, decoupled_weight_decay=False),
    nadam_step,
    lambda p, h: {"exp_avg": jnp.zeros_like(p), "exp_avg_sq": jnp.zeros_like(p),
                  "mu_product": jnp.ones((), jnp.float32)},
    momentum_key="betas", flags=("maximize", "decoupled_weight_decay"),
    ranges=dict(_RANGES, momentum_decay=NON_NEGATIVE))


def radam_step(g, p, slots, h, t):
    """torch RAdam: the rectified update once ``rho_t > 5``, plain momentum SGD before."""
    beta1, beta2 = h["betas"]
    g, p = _decay(sign_flip(g, h), p, h, h["decoupled_weight_decay"])
    m, v = _moments(g, slots, beta1, beta2)
    bc2 = one_minus_pow(beta2, t)
    m_hat = m / one_minus_pow(beta1, t)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * power(beta2, t) / bc2
    rect = jnp.sqrt(jnp.maximum((rho_t - 4) * (rho_t - 2) * rho_inf, 0)
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    # torch: ``bc2**0.5 / tensor`` is ``tensor.reciprocal() * bc2**0.5``
    adaptive = (1 / _plus_eps(jnp.sqrt(v), h["eps"], v.dtype)) * jnp.sqrt(bc2)
    lr = h["lr"]
    # torch: ``p.add_(x, alpha=-1)`` with the product x rounded first
    rectified = p - mul_(m_hat * lr * adaptive, rect)
    plain = p - mul_(m_hat, lr)
    return jnp.where(rho_t > 5, rectified, plain), {"exp_avg": m, "exp_avg_sq": v}


RAdam = Rule("RAdam", dict(lr=1e-3, **_BASE, decoupled_weight_decay=False), radam_step,
             lambda p, h: {"exp_avg": jnp.zeros_like(p), "exp_avg_sq": jnp.zeros_like(p)},
             momentum_key="betas", flags=("maximize", "decoupled_weight_decay"),
             ranges=_RANGES)

RULES = (Adam, AdamW, Adamax, NAdam, RAdam)
