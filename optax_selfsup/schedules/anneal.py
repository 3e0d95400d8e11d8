"""Numerically careful annealing primitives shared by every schedule.

Upstream (mmcv ``annealing_cos`` / ``annealing_linear``)::

    cos_anneal(a, b, f, w=1) = b + 0.5 * w * (a - b) * (1 + cos(pi * f))
    lin_anneal(a, b, f)      = a + (b - a) * f

In float32, ``1 + cos(pi * f)`` cancels catastrophically as ``f -> 1`` and an
iteration count loses integer precision once it is turned into a float. Here
``1 + cos(pi f) = 2 sin^2(pi (1 - f) / 2)`` is evaluated from ``1 - f``, and
``1 - f`` is formed from an exact integer difference, so the last iterations
of a million-step run keep full relative precision.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def float_dtype():
    """float64 when ``jax_enable_x64`` is on, else float32 (decided at trace time)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def int_dtype():
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def as_iteration(it):
    """The global iteration as an integer array (Python int, int32 or int64 in)."""
    it = jnp.asarray(it)
    if not jnp.issubdtype(it.dtype, jnp.integer):
        raise TypeError(f"the iteration must be an integer, got dtype {it.dtype}")
    return it.astype(int_dtype())


def ratio(num, den):
    """``num / den`` for an integer array ``num`` and a Python number ``den``."""
    dt = float_dtype()
    return num.astype(dt) / jnp.asarray(den, dt)


def offset(it, start: float):
    """``it - start`` for an integer array and a (possibly fractional) constant.

    The integral part of ``start`` is subtracted in integer arithmetic first, so
    the result is exact to float rounding of the fractional part only.
    """
    whole = math.floor(start)
    dt = float_dtype()
    return (it - whole).astype(dt) - jnp.asarray(start - whole, dt)


def cos_anneal(start, end, rest, weight=1.0):
    """mmcv ``annealing_cos(start, end, f, weight)`` given ``rest = 1 - f``.

    ``end + 0.5*w*(start-end)*(1+cos(pi f)) = w*s2*start + (c2 + (1-w)*s2)*end``
    with ``s2 = sin^2(pi*rest/2)`` and ``c2 = 1 - s2``: both ends are hit exactly.
    """
    half = (0.5 * math.pi) * rest
    s2, c2 = jnp.sin(half) ** 2, jnp.cos(half) ** 2
    if isinstance(weight, (int, float)) and weight == 1:
        return s2 * start + c2 * end
    return (weight * s2) * start + (c2 + (1.0 - weight) * s2) * end


def lin_anneal(start, end, done, rest):
    """mmcv ``annealing_linear(start, end, f)`` given ``done = f`` and ``rest = 1 - f``."""
    return rest * start + done * end


def anneal(strategy: str, start, end, done, rest):
    """Dispatch on mmcv's ``anneal_strategy`` ('cos' or 'linear')."""
    if strategy == "cos":
        return cos_anneal(start, end, rest)
    return lin_anneal(start, end, done, rest)


def const_pow(base: float, exponent):
    """``base ** exponent`` for a constant base and an integer array exponent.

    ``exp(exponent * log(base))`` with ``log(base)`` taken in float64 on the host:
    rounding ``base`` to float32 first would put a relative error of
    ``exponent * 6e-8`` into the result (1e-4 after 2000 steps of gamma=0.999).
    """
    dt = float_dtype()
    if base <= 0:
        return jnp.power(jnp.asarray(base, dt), exponent.astype(dt))
    return jnp.exp(exponent.astype(dt) * jnp.asarray(math.log(base), dt))
