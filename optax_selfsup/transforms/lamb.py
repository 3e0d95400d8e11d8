"""MMPretrain's Lamb (``mmpretrain.engine.optimizers.Lamb``, timm's NVLAMB variant) as a rule.

One update, with ``t`` the number of updates so far (this one included):

1. global clip: ``n = sqrt(sum over all tensors with a gradient of sum(g^2))``; when
   ``n > max_grad_norm`` every gradient is divided by ``n / max_grad_norm``;
2. per tensor, with ``b3 = 1 - beta1`` (``grad_averaging``) or 1::

       m = beta1*m + b3*g;   v = beta2*v + (1 - beta2)*g^2
       u = (m / (1 - beta1^t)) / (sqrt(v) / sqrt(1 - beta2^t) + eps) + wd*p
       r = ||p|| / ||u||  (1 when either norm is 0; min(r, 1) with ``trust_clip``)
       p = p - lr * r * u

   the bias corrections only with ``bias_correction``; the trust ratio ``r`` only where
   ``weight_decay != 0`` or ``always_adapt`` (else ``r = 1``).

What follows the upstream arithmetic beyond the formula:

- the clip's sum of squares is accumulated in float32, tensor after tensor in leaf
  order, whatever the parameters' dtype (upstream's accumulator takes torch's default
  dtype, float32): with float64 parameters the divisor is that float32 value. Where the
  leaf order differs from the torch param order the sum can differ in its last float32
  bit, and so can the divisor (a relative 6e-8, only while the clip engages). Its square
  root is correctly rounded, as torch's on CUDA; torch 2.13's CPU ``sqrt`` is a float32
  ulp off for about 1 input in 6, which moves a float64 run on a CPU torch by ~1e-8;
- ``max_grad_norm`` is optimizer-wide (upstream reads the constructor's value and ignores a
  param group's), so per-leaf values must all be equal;
- ``t`` is kept per param group upstream and advances at every update for every group:
  a tensor without a gradient at an update (``grad_mask``, a frozen layer) is left as it
  is, state included, but the count moves on; when it first gets a gradient at update
  ``t``, its zero moments are bias-corrected with that ``t``, not 1 (as upstream). The
  state keeps the count per tensor (``TorchOptimizerState.step``, all equal);
- float16 / bfloat16 parameters: each of upstream's tensor operations is computed in
  float32 and rounded to the stored dtype, as torch does (moments, denominator, update);
- state slots ``exp_avg`` / ``exp_avg_sq`` as upstream's;
- 0-d parameters are accepted (upstream cannot step one: its in-place division of a 0-d
  gradient by a shape-[1] divisor raises ``output with shape [] doesn't match the
  broadcast shape [1]``); they follow the same formula, with ``||p|| = |p|``.
"""

from __future__ import annotations

import numbers

import jax.numpy as jnp
import numpy as np

from ..validation import BETA, NON_NEGATIVE
from .rule import Rule, one_minus_pow, tensor_norm


def _is_number(x) -> bool:
    return isinstance(x, (numbers.Number, np.generic))


def _widened(dtype):
    return jnp.promote_types(dtype, jnp.float32)


def lamb_global_clip(grads, masks, hs, norms):
    """Step 1: every gradient divided by ``max(n / max_grad_norm, 1)`` (upstream arithmetic:
    float32 sum and divisor, strict ``n > max_grad_norm``). ``norms``: per-leaf 2-norms
    already known (a fused ``grad_clip``), else None; leaves whose mask is False are left
    out of ``n``, as upstream leaves out ``p.grad is None``."""
    total = None
    for g, mask, norm in zip(grads, masks, norms):
        if norm is None:  # torch: grad.pow(2).sum(), in the gradient's dtype
            sq = jnp.sum(g * g, dtype=_widened(g.dtype)).astype(g.dtype)
        else:
            sq = (norm * norm).astype(g.dtype)
        sq = sq.astype(jnp.float32)
        if mask is not None:
            sq = jnp.where(mask, sq, jnp.float32(0))
        total = sq if total is None else total + sq  # tensor after tensor, as upstream
    divisor = global_clip_divisor(total, hs[0]["max_grad_norm"])
    grads = [divided(g, divisor) for g in grads]
    return grads, [None if n is None else n / divisor for n in norms]


def global_clip_divisor(total_squares, max_grad_norm):
    """Upstream's divisor of every gradient: ``n / max_grad_norm`` where ``n = sqrt(total)``
    is strictly above it, else 1; float32 arithmetic (both layouts use it)."""
    norm = jnp.sqrt(total_squares)
    limit = jnp.asarray(max_grad_norm).astype(jnp.float32)
    return jnp.where(norm > limit, norm / limit, jnp.float32(1))


def divided(g, divisor):
    """``g / divisor`` computed in at least float32, back in ``g``'s dtype."""
    return (g.astype(_widened(g.dtype)) / divisor).astype(g.dtype)


def lamb_step(g, p, slots, h, t):
    """Step 2 for one tensor, ``g`` already divided by the global clip. Each of upstream's
    tensor operations is computed in at least float32 and rounded to the stored dtype, as
    torch computes and stores a float16 / bfloat16 one (a no-op for float32 and float64)."""
    dtype, wide = p.dtype, _widened(p.dtype)
    rw = lambda x: x.astype(dtype).astype(wide)  # one torch op's result, stored, read again
    g, p = g.astype(wide), p.astype(wide)
    beta1, beta2 = h["betas"]
    beta3 = 1 - beta1 if h["grad_averaging"] else 1.0
    m = rw(rw(slots["exp_avg"].astype(wide) * beta1) + beta3 * g)
    v = rw(rw(slots["exp_avg_sq"].astype(wide) * beta2) + (1 - beta2) * g * g)
    if h["bias_correction"]:
        bc1, bc2_root = one_minus_pow(beta1, t), jnp.sqrt(one_minus_pow(beta2, t))
    else:  # upstream divides by 1.0: exact
        bc1 = bc2_root = 1.0
    denom = rw(rw(rw(jnp.sqrt(v)) / bc2_root) + h["eps"])
    u = rw(rw(m / bc1) / denom)
    wd = h["weight_decay"]
    if not (_is_number(wd) and wd == 0):
        u = rw(u + wd * p)
    adapt = True if h["always_adapt"] else (bool(wd != 0) if _is_number(wd) else wd != 0)
    if adapt is not False:
        w_norm = rw(tensor_norm(p, h))
        u_norm = rw(tensor_norm(u, h))
        # upstream's ratio is float32 for float16 / bfloat16 parameters (0-d where with a
        # float32 one): the quotient is rounded to the stored dtype, the ratio is not
        ratio = jnp.where(w_norm > 0, jnp.where(u_norm > 0, rw(w_norm / u_norm), 1.0), 1.0)
        if h["trust_clip"]:
            ratio = jnp.minimum(ratio, 1.0)
        if adapt is not True:  # a traced weight decay
            ratio = jnp.where(adapt, ratio, 1.0)
        u = rw(u * ratio)
    return p - h["lr"] * u, {"exp_avg": m.astype(dtype), "exp_avg_sq": v.astype(dtype)}


def _lamb_slots(p, h):
    return {"exp_avg": jnp.zeros_like(p), "exp_avg_sq": jnp.zeros_like(p)}


Lamb = Rule(
    "Lamb",
    dict(lr=1e-3, bias_correction=True, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01,
         grad_averaging=True, max_grad_norm=1.0, trust_clip=False, always_adapt=False),
    lamb_step, _lamb_slots, momentum_key="betas",
    flags=("bias_correction", "grad_averaging", "trust_clip", "always_adapt"),
    # upstream checks nothing; these refuse what cannot train (a division by 1 - beta^t = 0,
    # a negative clip divisor that flips every gradient)
    ranges=dict(lr=NON_NEGATIVE, betas=(BETA, BETA), eps=NON_NEGATIVE,
                weight_decay=NON_NEGATIVE, max_grad_norm=NON_NEGATIVE),
    prepare=lamb_global_clip, shared_args=("max_grad_norm",), group_step=True)

RULES = (Lamb,)
