"""MMEngine's ``param_scheduler`` as pure, jit-able functions of the global iteration.

MMSelfSup 1.x / MMPretrain 1.x configs schedule hyperparameters with a list of
*chainable* schedulers: each computes the new value from the group's current
one, all write the same ``param_groups[g][param]`` in list order, iteration
schedulers step after every iteration and epoch schedulers after every epoch.
This module gives, for each parameter, exactly the value a PyTorch optimizer
step of iteration ``it`` reads, for every param group at once::

    loop = TrainLoop.from_train_cfg(cfg['train_cfg'], steps_per_epoch=len(loader))
    scheds = parse_param_scheduler(cfg['param_scheduler'], loop, n_groups=3)
    lr = scheds.for_param('lr')                  # a ParamSchedule
    lrs = lr(it, base_lrs)                       # [..., 3]; jit / vmap friendly
    wd = scheds.for_param('weight_decay')(it, base_wds)

* ``base`` holds each group's value after the optimizer constructor (``lr``
  after ``lr_mult``/layer decay, ``weight_decay`` after ``decay_mult``,
  ``momentum`` or, for Adam-family / Lamb, ``betas[0]``); ``it`` any integer
  array; the result has shape ``it.shape + base.shape``. Past the run's last
  iteration the last value is held.
* Supported: ``Constant``, ``CosineAnnealing``, ``CosineRestart``,
  ``Exponential``, ``Linear``, ``MultiStep``, ``OneCycle``, ``Poly``, ``Step`` in
  their ``*LR`` / ``*Momentum`` / ``*ParamScheduler(param_name=...)`` forms and
  MMPretrain's ``CosineAnnealingWeightDecay`` (groups whose base is 0 stay 0);
  ``param_name`` is ``lr``, ``momentum`` or ``weight_decay``. ``ReduceOnPlateau*``
  needs a validation metric and is refused.
* The Runner's rules: ``end`` defaults to ``max_epochs`` if ``by_epoch``
  (default True) else ``max_iters``, before ``convert_to_iter_based``; every
  scheduler takes one step when built (``LinearLR`` multiplies by
  ``start_factor`` before iteration 0); only steps with ``begin <= step < end``
  count. Under ``IterBasedTrainLoop`` a ``by_epoch=True`` scheduler acts only at
  construction (a ``SchedulerWarning`` names it).
* ``hook_writes``: hooks that *set* a value (MMPretrain's ``SimSiamHook``:
  ``HookWrite.simsiam(hook_cfg, fix_lr)``) at each epoch (or iteration)
  start; later scheduler steps continue from the written value.
* ``OneCycle`` ignores the optimizer's lr; a per-group ``eta_max`` list has one
  entry per group plus one for the base settings the Runner's ``OptimWrapper``
  adds when there is more than one group (its length must be
  ``n_groups + 1`` then, as upstream).

Numerics: MMEngine recurses in float64. Here each stretch of iterations
between events (a scheduler's begin/end, a restart, a hook write) is a closed
form from the stretch's start value, ``e + (u - e) * prod_i R_i``, with every
``R_i`` telescoped from upstream's step formula and evaluated without
cancellation (``1 + cos(pi k / T) = 2 sin^2(pi (T - k) / 2T)`` from exact
integers); the start values are composed in float64 at build time as affine
functions of the base. Float32 stays within about 1e-6 of the base over
million-iteration runs. Overlaps whose steps do not commute (a LinearLR
warmup overlapping a cosine with ``eta_min != 0``) are tabulated per
iteration, in float64 at build time (``ParamSchedule.table_rows``).
"""

from __future__ import annotations

import dataclasses
import warnings

import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from .anneal import as_iteration, float_dtype
from .mmengine_chain import ONECYCLE, TABLE, Compiled, compile_chain, n_at
from .mmengine_loop import HookWrite, TrainLoop
from .mmengine_onecycle import OneCycle
from .mmengine_parse import PARAM_NAMES, SchedulerWarning, parse_scheduler, scheduler_list
from .mmengine_schedulers import CosineWeightDecay, Ctx, Scheduler

MOMENTUM_KEYS = ("momentum", "betas", None)
TABLE_WARN_ROWS = 100_000


@dataclasses.dataclass(frozen=True, eq=False)
class ParamSchedule:
    """``values = schedule(it, base)``: one parameter of every group at iteration ``it``."""

    param_name: str
    loop: TrainLoop
    schedulers: tuple[Scheduler, ...]
    ctxs: tuple[Ctx, ...]
    compiled: Compiled
    n_variants: int
    signature: np.ndarray | None  # [G] static variant signature per group, or None
    zero_split: bool  # variants doubled by ``base == 0`` (CosineAnnealingWeightDecay)
    iter_writes: tuple[tuple[np.ndarray, float], ...]  # per-variant masks

    @property
    def n_groups(self) -> int | None:
        return None if self.signature is None else len(self.signature)

    @property
    def n_segments(self) -> int:
        return int(np.sum(self.compiled.starts < self.loop.max_iters))

    @property
    def table_rows(self) -> int:
        """Per-iteration rows tabulated for non-commuting overlaps (0 on every real config)."""
        cp = self.compiled
        seg = np.flatnonzero(cp.mode[: self.n_segments] == TABLE)
        ends = np.append(cp.starts[: self.n_segments], self.loop.max_iters)
        return int(sum(ends[k + 1] - ends[k] for k in seg))

    def bind(self, base):
        """``it -> values`` for fixed ``base``."""
        return lambda it: self(it, base)

    def __call__(self, it, base):
        """The values at iteration(s) ``it`` (an integer array) of groups with bases ``base``:
        shape ``it.shape + base.shape``, float64 under ``jax_enable_x64`` else float32."""
        f = float_dtype()
        cp, V = self.compiled, self.n_variants
        t = jnp.clip(as_iteration(it), 0, self.loop.max_iters - 1)
        b = jnp.asarray(base, f)
        if self.signature is not None and b.shape != self.signature.shape:
            raise ConfigError(f"base for {self.param_name!r} must have shape "
                              f"{self.signature.shape} (one value per param group), got "
                              f"{b.shape}")
        starts = jnp.asarray(cp.starts, t.dtype)
        k = jnp.searchsorted(starts, t, side="right") - 1
        t0 = starts[k]
        tt, tt0 = t[..., None], t0[..., None]
        ratio = jnp.ones(t.shape + (V,), f)
        for j, i in enumerate(cp.ratio_idx):
            s = self.schedulers[i]
            n, n0 = n_at(s.timing, tt, self.loop, jnp), n_at(s.timing, tt0, self.loop, jnp)
            use = jnp.asarray(cp.act[:, j])[k][..., None] & (n != n0)
            ratio = jnp.where(use, ratio * s.ratio(jnp, n, n0, self.ctxs[i], f), ratio)

        sig = (np.zeros(b.shape, np.int32) if self.signature is None
               else self.signature.astype(np.int32))
        vg = sig * 2 + (b == 0).astype(jnp.int32) if self.zero_split else jnp.asarray(sig)

        def g(x):  # [..., V] -> [..., *base.shape]
            return x[..., vg]

        def row(x):
            return g(jnp.asarray(x, f)[k])

        da_b = row(cp.da) * b + row(cp.dc)
        value = row(cp.rho) * b + row(cp.c) + da_b * g(ratio)
        mode = jnp.asarray(cp.mode)[k][(...,) + (None,) * b.ndim]
        if cp.onecycle_idx is not None:
            s = self.schedulers[cp.onecycle_idx]
            n, n0 = n_at(s.timing, tt, self.loop, jnp), n_at(s.timing, tt0, self.loop, jnp)
            oc = g(s.value(jnp, n, self.ctxs[cp.onecycle_idx], f))
            stepped = (n != n0)[..., 0][(...,) + (None,) * b.ndim]
            value = jnp.where((mode == ONECYCLE) & stepped, oc, value)
        if np.any(cp.mode == TABLE):
            r = jnp.asarray(cp.table_off)[k] + (t - t0)
            r = jnp.clip(r, 0, len(cp.ta) - 1)
            tab = g(jnp.asarray(cp.ta, f)[r]) * b + g(jnp.asarray(cp.tc, f)[r])
            value = jnp.where(mode == TABLE, tab, value)
        for mask, x in self.iter_writes:
            value = jnp.where(g(jnp.asarray(mask)), jnp.asarray(x, f), value)
        return value


@dataclasses.dataclass(frozen=True, eq=False)
class MMEngineSchedules:
    """Every parameter's schedule of one ``param_scheduler`` config."""

    loop: TrainLoop
    schedulers: tuple[Scheduler, ...]
    hook_writes: tuple[HookWrite, ...]
    n_groups: int | None
    params: tuple[str, ...]  # parameters some scheduler or hook write changes
    _by_param: dict

    def for_param(self, param_name: str) -> ParamSchedule:
        """The schedule of ``param_name`` (the base, unchanged, when nothing schedules it)."""
        if param_name not in PARAM_NAMES:
            raise ConfigError(f"param_name={param_name!r} is not one of "
                              f"{', '.join(map(repr, PARAM_NAMES))}")
        return self._by_param[param_name]


def parse_param_scheduler(param_scheduler, loop: TrainLoop, *, n_groups: int | None = None,
                          hook_writes=(), optimizer_momentum: str | None = "momentum",
                          default_scope: str | None = None,
                          where: str = "param_scheduler") -> MMEngineSchedules:
    """Validate an MMEngine ``param_scheduler`` (dict or list) and compile every parameter.

    ``n_groups``: the number of param groups (needed with ``hook_writes`` and per-group
    OneCycle ``eta_max``). ``optimizer_momentum``: where the optimizer keeps momentum:
    ``'momentum'`` (SGD, LARS, RMSprop), ``'betas'`` (Adam family, Lamb; the ``momentum``
    values are ``betas[0]``) or ``None``. ``default_scope``: the config's scope, to check
    that ``CosineAnnealingWeightDecay`` resolves (``None``: not checked).
    """
    if optimizer_momentum not in MOMENTUM_KEYS:
        raise ConfigError(f"optimizer_momentum={optimizer_momentum!r} is not one of "
                          "'momentum', 'betas', None")
    if n_groups is not None and (isinstance(n_groups, bool) or not isinstance(n_groups, int)
                                 or n_groups <= 0):
        raise ConfigError(f"n_groups={n_groups!r} must be a positive int")
    scheds = []
    entries = [] if param_scheduler is None else scheduler_list(param_scheduler, where)
    for i, (cfg, w) in enumerate(entries):
        scheds.append(parse_scheduler(cfg, i, w, loop, default_scope=default_scope))
    _check_momentum(scheds, optimizer_momentum)
    writes = tuple(hook_writes)
    for w in writes:
        if not isinstance(w, HookWrite):
            raise ConfigError(f"hook_writes must hold HookWrite objects, got {w!r}")
        if w.param_name not in PARAM_NAMES:
            raise ConfigError(f"HookWrite.param_name={w.param_name!r} is not one of "
                              f"{', '.join(map(repr, PARAM_NAMES))}")
        if n_groups is None or len(w.mask) != n_groups:
            raise ConfigError(f"HookWrite.mask has {len(w.mask)} entries; pass n_groups and "
                              "one entry per param group")
    by_param = {p: _compile_param(p, scheds, writes, loop, n_groups) for p in PARAM_NAMES}
    params = tuple(p for p in PARAM_NAMES if any(s.timing.param == p for s in scheds)
                   or any(w.param_name == p for w in writes))
    return MMEngineSchedules(loop, tuple(scheds), writes, n_groups, params, by_param)


def _check_momentum(scheds, key):
    seen_mixin = False
    for s in scheds:
        tm = s.timing
        if tm.param != "momentum":
            continue
        if tm.type.endswith("Momentum"):
            if key is None:
                raise ConfigError(f"{tm.where}.type={tm.type!r} needs an optimizer with "
                                  "momentum or betas (MMEngine raises ValueError)")
            seen_mixin = True
        elif key == "betas":
            raise ConfigError(f"{tm.where}: {tm.type}(param_name='momentum') on an Adam-family "
                              "optimizer writes a 'momentum' key that torch never reads (and "
                              f"MMEngine raises KeyError{'' if seen_mixin else ' here'}); use "
                              "the *Momentum schedulers, which update betas[0]")
        elif key is None:
            raise ConfigError(f"{tm.where}: the optimizer has no momentum (MMEngine raises "
                              "KeyError 'momentum')")


def _compile_param(param, all_scheds, all_writes, loop, n_groups) -> ParamSchedule:
    scheds = [s for s in all_scheds if s.timing.param == param]
    writes = [w for w in all_writes if w.param_name == param]
    onecycles = [i for i, s in enumerate(scheds) if isinstance(s, OneCycle)]
    if len(onecycles) > 1:
        raise ConfigError(f"{scheds[onecycles[1]].timing.where}: a second OneCycle on "
                          f"{param!r}; the two would share the groups' initial/max/min values")
    oc = scheds[onecycles[0]] if onecycles else None
    oc_eta = None
    if oc is not None and isinstance(oc.eta_max, tuple):
        expected = None if n_groups is None else n_groups + (1 if n_groups > 1 else 0)
        if len(oc.eta_max) != expected:
            raise ConfigError(
                f"{oc.timing.where}.eta_max has {len(oc.eta_max)} values; MMEngine's "
                f"OptimWrapper has {expected} param groups here (n_groups={n_groups}, plus "
                "one for the base settings when there are several) and raises ValueError")
        oc_eta = oc.eta_max[: n_groups]
    # variants: one per distinct static group signature (x2 for the weight-decay cosine)
    per_group = writes or oc_eta is not None
    if per_group:
        sigs = [tuple(w.mask[g] for w in writes) + ((oc_eta[g],) if oc_eta else ())
                for g in range(n_groups)]
        uniq = sorted(set(sigs), key=sigs.index)
        signature = np.asarray([uniq.index(s) for s in sigs], np.int32)
    else:
        uniq, signature = [()], None
    zero_split = any(isinstance(s, CosineWeightDecay) for s in scheds)
    z = 2 if zero_split else 1
    V = len(uniq) * z
    zero = np.asarray([v % z == 1 for v in range(V)])

    def per_variant(fn):
        return np.asarray([fn(uniq[v // z]) for v in range(V)])

    n_w = len(writes)
    masks = [(per_variant(lambda s, i=i: s[i]), w) for i, w in enumerate(writes)]
    epoch_writes = [(m, float(w.value)) for m, w in masks if w.every == "epoch"]
    iter_writes = tuple((m, float(w.value)) for m, w in masks if w.every == "iter")
    oc_keys = None
    if oc is not None:
        eta = per_variant(lambda s: s[n_w]) if oc_eta else np.full(V, oc.eta_max)
        initial = eta / oc.div_factor
        oc_keys = (initial, eta, initial / oc.final_div_factor)
    ctxs = []
    for i, s in enumerate(scheds):
        after_oc = oc is not None and onecycles[0] <= i
        base_c = oc_keys[0] if after_oc else np.zeros(V)
        ctxs.append(Ctx(0.0 if after_oc else 1.0, base_c, zero,
                        oc_keys if s is oc else None))
    compiled = compile_chain(scheds, ctxs, loop, V, epoch_writes)
    schedule = ParamSchedule(param, loop, tuple(scheds), tuple(ctxs), compiled, V, signature,
                             zero_split, iter_writes)
    if schedule.table_rows > TABLE_WARN_ROWS:
        names = ", ".join(s.timing.where for s in scheds)
        warnings.warn(f"{param!r}: overlapping schedulers that do not commute ({names}) need a "
                      f"table of {schedule.table_rows} iterations", SchedulerWarning,
                      stacklevel=3)
    return schedule
