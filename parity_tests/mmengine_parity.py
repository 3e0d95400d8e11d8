"""One MMEngine config run by the real MMEngine Runner (``torch_ref.mmengine``) and by
``oss.build_optimizer`` on the same gradients; the deviations at every iteration.

``compare(cfg, shapes, steps=T, steps_per_epoch=L, dtype=...)`` draws initial values and
``T`` gradients, trains both, and returns a :class:`Deviation`: the largest parameter error
``|ours - torch| / max(1, |torch|)`` over all iterations and leaves, the largest errors of
the per-parameter lr / momentum / weight decay in force at each iteration (relative to the
largest value each parameter's takes in the run), and the iterations where the two sides
stepped differently. ``jax_kwargs`` go to
``build_optimizer`` (``module=``, ``norm_layers=``, ``batch_size=``); ``ref_kwargs`` to
``run_mmengine`` (``modules=`` declares the torch module types: norm layers must be declared
there, as MMEngine finds them by type).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_selfsup as oss
from optax_selfsup.names import nest_names
from torch_ref.mmengine import run_mmengine


@dataclasses.dataclass
class Deviation:
    params: float
    lr: float
    momentum: float
    weight_decay: float
    stepped_mismatch: list
    run: object  # the MMEngineRun
    ours: dict  # {'params': [...], 'lr': {name: array}, ...}

    def check(self, tol: float, hparam_tol: float | None = None) -> None:
        hparam_tol = tol if hparam_tol is None else hparam_tol
        assert not self.stepped_mismatch, f"stepped differently at {self.stepped_mismatch}"
        assert self.params <= tol, f"params deviate by {self.params:.3g} (tol {tol:g})"
        for key in ("lr", "momentum", "weight_decay"):
            value = getattr(self, key)
            assert value <= hparam_tol, f"{key} deviates by {value:.3g} (tol {hparam_tol:g})"


def draw(shapes: dict, steps: int, seed: int = 0, dtype=np.float32, grad_scale: float = 0.1):
    rng = np.random.default_rng(seed)
    values = {k: (rng.normal(size=s) * 0.5).astype(dtype) for k, s in shapes.items()}
    grads = [{k: (rng.normal(size=s) * grad_scale).astype(dtype) for k, s in shapes.items()}
             for _ in range(steps)]
    return values, grads


def jax_order(names) -> list[str]:
    tree = nest_names(dict.fromkeys(names, 0))
    return [".".join(str(k.key) for k in path)
            for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _flat(tree, names) -> dict:
    return dict(zip(names, (np.asarray(x) for x in jax.tree.leaves(tree))))


def run_ours(cfg, values, grads, *, steps_per_epoch, amp=False, inject_inf=None,
             **jax_kwargs):
    names = jax_order(values)
    tree = nest_names({k: jnp.asarray(values[k]) for k in names})
    tx = oss.build_optimizer(cfg, tree, steps_per_epoch=steps_per_epoch, **jax_kwargs)
    state = tx.init(tree)
    plan_kwargs = {k: v for k, v in jax_kwargs.items() if k != "layout"}
    plan = oss.plan_optimizer(cfg, tree, steps_per_epoch=steps_per_epoch, **plan_kwargs)

    @jax.jit
    def step(p, s, g):
        if amp:
            g = jax.tree.map(lambda x: x * oss.loss_scale(s).astype(x.dtype), g)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    out = {"params": [], "lr": [], "momentum": [], "weight_decay": [], "stepped": [],
           "loss_scale": [], "loss_multiplier": [], "grad_norm": [],
           "base_weight_decay": {n: h.get("weight_decay", 0.0)
                                 for n, h in zip(plan.names, plan.hparams)}}
    for t, g in enumerate(grads):
        g = {k: np.array(v) for k, v in g.items()}
        if inject_inf and t in inject_inf:
            g[inject_inf[t]].reshape(-1)[0] = np.inf
        if amp:  # the GradScaler's scale (the loss is multiplied by it / the divisor)
            out["loss_scale"].append(float(oss.current_hparams(state)["loss_scale"]))
            out["loss_multiplier"].append(float(oss.loss_scale(state)))
        tree, state = step(tree, state, nest_names({k: jnp.asarray(g[k]) for k in names}))
        out["params"].append(_flat(tree, names))
        hp = oss.current_hparams(state)
        for key in ("lr", "momentum", "weight_decay"):
            out[key].append(None if hp.get(key) is None else _flat(hp[key], names))
        out["stepped"].append(bool(oss.has_updated(state)))
        out["grad_norm"].append(float(hp["grad_norm"]) if "grad_norm" in hp else None)
    return out


def _rel(ours, ref) -> float:
    """The largest ``|ours - ref|`` over the run, relative to the largest ``|ref|`` of the run
    (a value a scheduler pulls up from 0 is as exact as the schedule's scale allows, not to
    its own size)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    scale = np.max(np.abs(ref), initial=0.0)
    err = np.max(np.abs(ours - ref), initial=0.0)
    return float(err / scale) if scale > 0 else float(err)


def compare(cfg, shapes, *, steps, steps_per_epoch, dtype=np.float32, seed=0, amp=False,
            inject_inf=None, jax_kwargs=None, ref_kwargs=None, grad_scale=0.1) -> Deviation:
    values, grads = draw(shapes, steps, seed, dtype, grad_scale)
    order = jax_order(values)
    values = {k: values[k] for k in order}  # torch registration order = the JAX leaf order
    run = run_mmengine(cfg, values, grads, steps_per_epoch=steps_per_epoch, dtype=dtype,
                       inject_inf=inject_inf, **(ref_kwargs or {}))
    with jax.enable_x64(np.dtype(dtype) == np.float64):
        ours = run_ours(cfg, values, grads, steps_per_epoch=steps_per_epoch, amp=amp,
                        inject_inf=inject_inf, **(jax_kwargs or {}))
    p_err = max(float(np.max(np.abs(ours["params"][t][k] - run.params[t][k])
                             / np.maximum(1.0, np.abs(run.params[t][k])), initial=0.0))
                for t in range(steps) for k in run.params[t])
    errs = {}
    for key in ("lr", "momentum", "weight_decay"):
        ref = getattr(run, key)
        if ref is None:  # the optimizer has no momentum
            assert ours[key][0] is None, key
            errs[key] = 0.0
            continue
        if ours[key][0] is None:  # nothing schedules it: the group's base holds
            ours[key] = [ours["base_" + key]] * steps
        errs[key] = max(_rel([ours[key][t][n] for t in range(steps)], ref[n]) for n in ref)
    mismatch = [t for t in range(steps) if ours["stepped"][t] != bool(run.stepped[t])]
    return Deviation(p_err, errs["lr"], errs["momentum"], errs["weight_decay"], mismatch, run,
                     ours)
