"""Hand-fused reference steps: the same maths as ``build_optimizer``, written directly.

This is the benchmark's variant (b), the practical speed limit for a config: one
jitted function of plain ``jnp`` per step, hyperparameters as Python constants
per leaf, the lr schedule as mmcv's closed-form formula of the iteration, no
wrappers, no ``where`` over parameter-sized buffers, no ``new_p - p`` updates.
With ``update_interval=k`` there are two functions: an accumulate-only
micro-step ``acc += g / k`` and the update micro-step (``acc + g / k`` goes to
the optimizer, ``acc`` is zeroed).

Supported (anything else raises NotImplementedError naming it): LARS (MMSelfSup)
and AdamW (torch), per-leaf lr / weight_decay / lars_exclude from the paramwise
rules and layer decay (read with ``oss.describe``), CosineAnnealing and
StepFixCosineAnnealing (by epoch or by iteration, absolute ``min_lr`` or
``min_lr_ratio``) with optional linear warmup, ``grad_clip`` (2-norm) and
``update_interval`` on an EpochBasedRunner whose run length is a multiple of k.

Formulas (SPEC sections 2, 4, 6):
  lr(it)    = target + 0.5 (base - target)(1 + cos(pi (progress - shift) / (max - shift)))
              x warmup factor while it < W: 1 - (1 - it/W)(1 - ratio)  (StepFix: it/W)
  clip      g *= min(max_norm / (||g||_global + 1e-6), 1)
  LARS      local = eta ||p|| / (||g|| + wd ||p|| + eps)  (1 if a norm is 0 or excluded)
            d = (g + wd p) local lr;  b = d at the first update, else m b + d;  p -= b
  AdamW     p *= 1 - lr wd;  m += (1 - b1)(g - m);  v = b2 v + (1 - b2) g^2
            p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp

import optax_selfsup as oss


def _float():
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _unsupported(what):
    raise NotImplementedError(f"bench/fused.py has no hand-fused form for {what}")


@dataclasses.dataclass(frozen=True)
class LrSchedule:
    """mmcv CosineAnnealing / MMSelfSup StepFixCosineAnnealing with linear warmup."""

    step_fix: bool
    by_epoch: bool
    steps_per_epoch: int
    max_epochs: int
    min_lr: float | None
    min_lr_ratio: float | None
    warmup_iters: int  # W in iterations, 0 = no warmup
    warmup_ratio: float

    def __call__(self, it, base: float):
        dt = _float()
        spe, max_iters = self.steps_per_epoch, self.steps_per_epoch * self.max_epochs
        progress, max_progress = (it // spe, self.max_epochs) if self.by_epoch else (it, max_iters)
        shift = 0
        if self.step_fix and self.warmup_iters:
            shift = self.warmup_iters // spe if self.by_epoch else self.warmup_iters
        target = self.min_lr if self.min_lr is not None else base * self.min_lr_ratio
        frac = (progress - shift).astype(dt) / (max_progress - shift)
        regular = target + 0.5 * (base - target) * (1 + jnp.cos(math.pi * frac))
        if not self.warmup_iters:
            return regular
        x = it.astype(dt) / self.warmup_iters
        factor = x if self.step_fix else 1 - (1 - x) * (1 - self.warmup_ratio)
        return jnp.where(it < self.warmup_iters, regular * factor, regular)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What a config asks for, per leaf, in the form the fused steps need."""

    optimizer: str  # 'LARS' or 'AdamW'
    names: list
    base_lr: list
    weight_decay: list
    lars_exclude: list
    momentum: float  # LARS momentum
    betas: tuple  # AdamW
    eps: float
    eta: float
    max_norm: float | None
    every_k: int
    schedule: LrSchedule

    @property
    def num_groups(self) -> int:
        return len(set(zip(self.base_lr, self.weight_decay, self.lars_exclude)))


def read_recipe(cfg: dict, params, steps_per_epoch: int) -> Recipe:
    opt = dict(cfg["optimizer"])
    kind = opt.get("type")
    if kind not in ("LARS", "AdamW"):
        _unsupported(f"optimizer.type={kind!r}")
    for key in ("momentum_config", "fp16"):
        if cfg.get(key) is not None:
            _unsupported(key)
    if any(h.get("type") == "SimSiamHook" for h in cfg.get("custom_hooks") or []):
        _unsupported("SimSiamHook")
    hooks = dict(cfg.get("optimizer_config") or {})
    every_k = hooks.pop("update_interval", 1)
    clip = hooks.pop("grad_clip", None)
    if hooks:
        _unsupported(f"optimizer_config keys {sorted(hooks)}")
    if clip is not None and float(clip.get("norm_type", 2)) != 2:
        _unsupported("grad_clip.norm_type != 2")
    runner = cfg["runner"]
    if runner.get("type", "EpochBasedRunner") != "EpochBasedRunner":
        _unsupported("an IterBasedRunner")
    max_epochs = runner["max_epochs"]
    if max_epochs * steps_per_epoch % every_k:
        _unsupported("a final partial accumulation group")
    lr_cfg = dict(cfg["lr_config"])
    policy = lr_cfg.pop("policy")
    if policy not in ("CosineAnnealing", "StepFixCosineAnnealing"):
        _unsupported(f"lr_config.policy={policy!r}")
    warmup = lr_cfg.pop("warmup", None)
    if warmup not in (None, "linear"):
        _unsupported(f"warmup={warmup!r}")
    warmup_iters = lr_cfg.pop("warmup_iters", 0) if warmup else 0
    if lr_cfg.pop("warmup_by_epoch", False):
        warmup_iters *= steps_per_epoch
    schedule = LrSchedule(
        step_fix=policy == "StepFixCosineAnnealing", by_epoch=lr_cfg.pop("by_epoch", True),
        steps_per_epoch=steps_per_epoch, max_epochs=max_epochs,
        min_lr=lr_cfg.pop("min_lr", None), min_lr_ratio=lr_cfg.pop("min_lr_ratio", None),
        warmup_iters=warmup_iters, warmup_ratio=lr_cfg.pop("warmup_ratio", 0.1))
    if lr_cfg:
        _unsupported(f"lr_config keys {sorted(lr_cfg)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paramwise rules that match nothing on this tree
        rows = oss.describe(cfg, params, steps_per_epoch=steps_per_epoch)
    if kind == "LARS":
        if opt.get("nesterov", False) or opt.get("dampening", 0.0):
            _unsupported("LARS nesterov / dampening")
        if len({r["momentum"] for r in rows}) != 1:
            _unsupported("per-leaf LARS momentum")
    elif opt.get("amsgrad", False) or opt.get("maximize", False):
        _unsupported("AdamW amsgrad / maximize")
    return Recipe(
        optimizer=kind, names=[r["name"] for r in rows], base_lr=[r["lr"] for r in rows],
        weight_decay=[r["weight_decay"] for r in rows],
        lars_exclude=[r["lars_exclude"] for r in rows],
        momentum=rows[0]["momentum"] if kind == "LARS" else 0.0,
        betas=tuple(opt.get("betas", (0.9, 0.999))),
        eps=opt.get("eps", 1e-8), eta=opt.get("eta", 1e-3),
        max_norm=None if clip is None else float(clip["max_norm"]), every_k=every_k,
        schedule=schedule)


def _clip_coef(recipe, sq_norms):
    if recipe.max_norm is None:
        return None
    total = jnp.sqrt(sum(sq_norms))
    return jnp.minimum(recipe.max_norm / (total + 1e-6), 1.0)


def lars_core(recipe: Recipe):
    """(init_slots, apply): LARS with per-leaf constants, clip folded in."""
    m, eta, eps = recipe.momentum, recipe.eta, recipe.eps

    def init_slots(params):
        return {"buf": jax.tree.map(jnp.zeros_like, params)}

    def apply(ps, gs, slots, it, count):
        first = count == 0
        sq = [jnp.sum(g * g) for g in gs]
        coef = _clip_coef(recipe, sq)
        new_p, new_b = [], []
        for i, (p, g, b) in enumerate(zip(ps, gs, slots["buf"])):
            lr = recipe.schedule(it, recipe.base_lr[i]).astype(p.dtype)
            wd = recipe.weight_decay[i]
            if coef is not None:
                g = g * coef.astype(p.dtype)
            scale = lr
            if not recipe.lars_exclude[i]:
                w_norm = jnp.sqrt(jnp.sum(p * p))
                g_norm = jnp.sqrt(sq[i]) if coef is None else jnp.sqrt(sq[i]) * coef
                trust = eta * w_norm / (g_norm + wd * w_norm + eps)
                scale = jnp.where((w_norm != 0) & (g_norm != 0), trust, 1.0).astype(p.dtype) * lr
            d = (g if wd == 0 else g + wd * p) * scale
            b = jnp.where(first, d, m * b + d) if m else d
            new_p.append(p - b)
            new_b.append(b)
        return new_p, {"buf": new_b}

    return init_slots, apply


def adamw_core(recipe: Recipe):
    """(init_slots, apply): torch AdamW with per-leaf lr / wd, clip folded in."""
    b1, b2, eps = (*recipe.betas, recipe.eps)

    def init_slots(params):
        return {"m": jax.tree.map(jnp.zeros_like, params),
                "v": jax.tree.map(jnp.zeros_like, params)}

    def apply(ps, gs, slots, it, count):
        t = (count + 1).astype(_float())
        bc1 = 1 - jnp.power(jnp.asarray(b1, _float()), t)
        bc2_sqrt = jnp.sqrt(1 - jnp.power(jnp.asarray(b2, _float()), t))
        coef = None
        if recipe.max_norm is not None:
            coef = _clip_coef(recipe, [jnp.sum(g * g) for g in gs])
        new_p, new_m, new_v = [], [], []
        for i, (p, g, m, v) in enumerate(zip(ps, gs, slots["m"], slots["v"])):
            lr = recipe.schedule(it, recipe.base_lr[i])
            wd = recipe.weight_decay[i]
            if coef is not None:
                g = g * coef.astype(p.dtype)
            if wd:
                p = p * (1 - lr * wd).astype(p.dtype)
            m = m + (1 - b1) * (g - m)
            v = v * b2 + (1 - b2) * g * g
            step = (lr / bc1).astype(p.dtype)
            new_p.append(p - step * (m / (jnp.sqrt(v) / bc2_sqrt.astype(p.dtype) + eps)))
            new_m.append(m)
            new_v.append(v)
        return new_p, {"m": new_m, "v": new_v}

    return init_slots, apply


@dataclasses.dataclass
class Fused:
    """``init(params) -> state``; ``step(params, state, grads) -> (params, state)``
    without accumulation. With ``update_interval=k``, per group of k micro-steps:
    ``start(acc, grads) -> g/k`` (the group's first), ``accumulate(acc, grads) -> acc +
    g/k``, and at the last ``update(params, state, acc, grads) -> (params, state, acc +
    g/k)``: the update's total gradient is written into the donated accumulator (no
    temporary, no zeroing: the next group starts by overwriting it). All jitted with
    every parameter-sized input donated."""

    recipe: Recipe
    init: callable
    step: callable | None = None
    start: callable | None = None
    accumulate: callable | None = None
    update: callable | None = None

    def micro_step(self, it):
        """Which function micro-iteration ``it`` runs: 'step', 'start', 'accumulate', 'update'."""
        k = self.recipe.every_k
        if k == 1:
            return "step"
        return "update" if (it + 1) % k == 0 else "start" if it % k == 0 else "accumulate"


def build_fused(recipe: Recipe) -> Fused:
    init_slots, apply = (lars_core if recipe.optimizer == "LARS" else adamw_core)(recipe)
    k = recipe.every_k

    def init(params):
        # ``it``: the micro-iteration of the next update (its lr); ``count``: updates done
        return {"it": jnp.asarray(k - 1, jnp.int32), "count": jnp.zeros((), jnp.int32),
                **init_slots(params)}

    def apply_tree(params, state, grads):
        ps, treedef = jax.tree.flatten(params)
        gs = treedef.flatten_up_to(grads)
        slot_keys = [key for key in state if key not in ("it", "count")]
        slots = {key: treedef.flatten_up_to(state[key]) for key in slot_keys}
        new_p, new_slots = apply(ps, gs, slots, state["it"], state["count"])
        out = {"it": state["it"] + k, "count": state["count"] + 1}
        out.update({key: jax.tree.unflatten(treedef, v) for key, v in new_slots.items()})
        return jax.tree.unflatten(treedef, new_p), out

    if k == 1:
        return Fused(recipe, init, step=jax.jit(apply_tree, donate_argnums=(0, 1)))

    def start(acc, grads):
        return jax.tree.map(lambda g: g / k, grads)

    def accumulate(acc, grads):
        return jax.tree.map(lambda a, g: a + g / k, acc, grads)

    def update(params, state, acc, grads):
        total = accumulate(acc, grads)
        params, state = apply_tree(params, state, total)
        return params, state, total

    # keep_unused: ``start`` ignores the accumulator's values but writes into its buffer
    return Fused(recipe, init, start=jax.jit(start, donate_argnums=(0,), keep_unused=True),
                 accumulate=jax.jit(accumulate, donate_argnums=(0,)),
                 update=jax.jit(update, donate_argnums=(0, 1, 2)))


def run_fused(fused: Fused, params, grads_seq):
    """Apply a sequence of micro-step gradients; returns the params (tests, checks)."""
    state = fused.init(params)
    acc = jax.tree.map(jnp.zeros_like, params)
    for it, g in enumerate(grads_seq):
        kind = fused.micro_step(it)
        if kind == "step":
            params, state = fused.step(params, state, g)
        elif kind == "update":
            params, state, acc = fused.update(params, state, acc, g)
        else:
            acc = getattr(fused, kind)(acc, g)
    return params
