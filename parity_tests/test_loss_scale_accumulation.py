"""fp16 / AMP loss scaling WITH accumulation, against torch's ``GradScaler`` at every iteration.

torch divides the loss before scaling it. MMSelfSup 0.x's ``GradAccumFp16OptimizerHook``
runs ``loss /= k; scaler.scale(loss).backward()`` (always ``k``: no shorter last group, and
the leftover micro-batches of a run that is not a multiple of ``k`` are never applied);
MMEngine's ``AmpOptimWrapper`` runs ``scaler.scale(loss / f).backward()`` with ``f = k``, or
``r = max_iters % k`` in the run's last, shorter group. Either way the gradient reaching the
model's loss is ``scale / f`` (one float32 division), so a float16 gradient overflows where
``|g| * scale / f`` passes 65504, and which updates are skipped (hence the whole scale
history) depends on that ``f``.

The torch side here is real autograd: the model's loss is computed in float16 (as autocast
computes a float16 layer) from float32 master parameters (or from float16 parameters whose
gradients accumulate in float16, copied to float32 master weights for the step), and the
multiplier is read off torch's own backward (a hook on the undivided loss). The MMEngine
side is the real ``Runner`` and ``AmpOptimWrapper`` (``mmengine_ref``), whose toy model
computes the same float16 loss. Ours: ``build_optimizer`` on the config, the loss multiplied
by ``oss.loss_scale(state)`` before ``jax.grad``, through ``tx.update`` + ``apply_updates``
and through ``oss.update_and_apply``. Compared at every iteration: the GradScaler's scale
(``current_hparams(state)['loss_scale']``), the loss multiplier, which iterations stepped,
and the parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmengine_parity import jax_order

import optax_selfsup as oss
from optax_selfsup.checkpoint import CheckpointMismatch, restore_checkpoint, save_checkpoint
from optax_selfsup.names import nest_names

SHAPES = {"w": (3, 4), "b": (4,)}
SGD = dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=1e-4)
SCALER = dict(init_scale=2.0**10, growth_interval=3)


def _values():
    rng = np.random.default_rng(0)
    return {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}


def _gradients(n, seed=1, top=(0.5, 200.0)):
    """``n`` float16 gradients whose largest |entry| is drawn log-uniformly in ``top``: at a
    multiplier of a few hundred some overflow float16 and some do not."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        g = {k: rng.normal(size=s) for k, s in SHAPES.items()}
        peak = np.exp(rng.uniform(*np.log(top)))
        out.append({k: (v / np.abs(v).max() * peak).astype(np.float16) for k, v in g.items()})
    return out


# -- torch: MMSelfSup 0.x's GradAccumFp16OptimizerHook on torch's own classes -----------------

def _torch_mmcv(grads, k, *, half_params=False, sgd=SGD):
    """(scale before each iteration, multiplier each loss got, iterations that stepped, params
    after each iteration). ``half_params``: a float16 model whose gradients accumulate in
    float16, copied to float32 master weights before unscaling (the optimizer's params)."""
    master = {n: torch.nn.Parameter(torch.tensor(v)) for n, v in _values().items()}
    model = ({n: torch.nn.Parameter(p.detach().half()) for n, p in master.items()}
             if half_params else master)
    opt = torch.optim.SGD(master.values(), lr=sgd["lr"], momentum=sgd["momentum"],
                          weight_decay=sgd["weight_decay"])
    scaler = torch.amp.GradScaler("cpu", **SCALER)
    scales, multipliers, stepped, params = [], [], [], []
    it = 0
    step = opt.step  # GradScaler.step calls it only for finite gradients
    opt.step = lambda *a, **kw: (stepped.append(it), step(*a, **kw))[1]
    for it, g in enumerate(grads):
        scales.append(scaler.get_scale())
        raw = torch.stack([(model[n].half() * torch.tensor(g[n])).sum().float()
                           for n in model]).sum()
        raw.register_hook(lambda grad: multipliers.append(float(grad)))
        loss = raw / k  # runner.outputs['loss'] /= update_interval
        scaler.scale(loss).backward()
        if (it + 1) % k == 0:  # every_n_iters: no final flush
            if half_params:
                for n, p in master.items():
                    p.grad = model[n].grad.float()
            scaler.unscale_(opt)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
            if half_params:
                for n, p in model.items():
                    p.grad = None
                    p.data = master[n].detach().half()
        params.append({n: p.detach().numpy().astype(np.float32) for n, p in model.items()})
    return scales, multipliers, stepped, params


# -- ours ---------------------------------------------------------------------------------

def _loss(params, grads16):
    """The loss computed in float16 (as torch's), returned in float32."""
    return sum(jnp.sum(params[n].astype(jnp.float16) * grads16[n]).astype(jnp.float32)
               for n in grads16)


def _stepper(tx, in_place):
    @jax.jit
    def step(p, s, g16):
        grads = jax.grad(lambda q: _loss(q, g16) * oss.loss_scale(s))(p)
        if in_place:
            return oss.update_and_apply(tx, grads, s, p)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s

    return step


def _ours(cfg, values, grads, steps_per_epoch, dtype=jnp.float32, in_place=False,
          restore_at=(), directory=None):
    """The same run through ``build_optimizer``: the loss times ``oss.loss_scale(state)``.
    ``restore_at``: iterations before which the run is saved to ``directory`` (orbax) and
    continued from the checkpoint restored into a rebuilt optimizer's templates."""
    names = jax_order(values)
    params = nest_names({n: jnp.asarray(values[n], dtype) for n in names})
    tx = oss.build_optimizer(cfg, params, steps_per_epoch=steps_per_epoch)
    state = tx.init(params)
    step = _stepper(tx, in_place)

    scales, multipliers, stepped, history = [], [], [], []
    for it, g in enumerate(grads):
        if it in restore_at:  # a restarted process: rebuilt optimizer, templates, restore
            save_checkpoint(directory, it, params=params, opt_state=state, config=cfg)
            template = jax.tree.map(jnp.zeros_like, params)
            tx = oss.build_optimizer(cfg, template, steps_per_epoch=steps_per_epoch)
            step = _stepper(tx, in_place)
            restored = restore_checkpoint(directory, params=template,
                                          opt_state=tx.init(template), step=it,
                                          config=cfg)
            params, state = restored.params, restored.opt_state
        scales.append(float(oss.current_hparams(state)["loss_scale"]))
        multipliers.append(float(oss.loss_scale(state)))
        params, state = step(params, state, nest_names({n: jnp.asarray(g[n]) for n in names}))
        if oss.has_updated(state):
            stepped.append(it)
        flat = dict(zip(names, (np.asarray(x, np.float32) for x in jax.tree.leaves(params))))
        history.append(flat)
    return scales, multipliers, stepped, history


def _first_difference(ours, ref):
    return next((i for i, (a, b) in enumerate(zip(ours, ref)) if a != b), None)


def _compare(ours, ref, *, params_tol=1e-5):
    """Scales, multipliers and stepped iterations exactly; the params at every iteration to
    ``|ours - torch| / max(1, |torch|) <= params_tol`` (float32 rounding: the SGD step's
    arithmetic is fused differently by XLA and torch). Returns that largest deviation."""
    (scales, mults, stepped, params), (r_scales, r_mults, r_stepped, r_params) = ours, ref
    assert len(scales) == len(r_scales)
    for what, a, b in (("scale", scales, r_scales), ("loss multiplier", mults, r_mults)):
        first = _first_difference(a, b)
        assert first is None, (f"the {what} first differs at iteration {first}: ours "
                               f"{a[first]!r}, torch {b[first]!r}")
    assert stepped == r_stepped
    worst = max(float(np.max(np.abs(params[t][n] - r_params[t][n])
                             / np.maximum(1.0, np.abs(r_params[t][n]))))
                for t in range(len(params)) for n in r_params[t])
    assert worst <= params_tol, f"params deviate by {worst:.3g} (tol {params_tol:g})"
    return worst


def _mmcv_cfg(k, steps, sgd=SGD):
    return dict(optimizer=sgd, runner=dict(type="IterBasedRunner", max_iters=steps),
                optimizer_config=dict(update_interval=k), fp16=dict(loss_scale=SCALER))


@pytest.mark.parametrize("in_place", [False, True], ids=["update", "update_and_apply"])
@pytest.mark.parametrize("k,steps", [(2, 60), (3, 60), (4, 62)],
                         ids=["k2", "k3", "k4-leftover"])
def test_mmcv_fp16_hook_float32_params(k, steps, in_place):
    """0.x ``fp16`` + ``update_interval=k``: float32 params, scale-dependent float16 overflow.
    k=3: ``scale / 3`` is not exact, and is the same float32 number on both sides; 62 steps
    with k=4: the last two micro-batches are never applied (the hook has no final flush)."""
    grads = _gradients(steps)
    ref = _torch_mmcv(grads, k)
    ours = _ours(_mmcv_cfg(k, steps), _values(), grads, steps, in_place=in_place)
    _compare(ours, ref)
    skipped = steps // k - len(ref[2])
    assert 2 <= skipped <= steps // k - 3, skipped  # the scale decides: neither none nor all
    if k == 3:  # the multiplier is the float32 quotient, not a float64 one
        assert all(m == float(np.float32(s) / np.float32(3)) for m, s in zip(ref[1], ref[0]))
    if steps % k:
        assert ref[2][-1] < steps - steps % k  # nothing applied after the last full group


@pytest.mark.parametrize("k", [3, 4])
def test_mmcv_fp16_hook_bit_for_bit_without_momentum(k):
    """With ``p -= 0.5 * g`` (one exact product, one rounding) the params equal torch's bit
    for bit at every iteration: the accumulated, unscaled gradients are torch's exactly,
    k = 3 (a multiplier ``scale / 3`` that is not exact) included."""
    plain = dict(type="SGD", lr=0.5, momentum=0.0, weight_decay=0.0)
    steps = 36
    grads = _gradients(steps)
    ref = _torch_mmcv(grads, k, sgd=plain)
    for in_place in (False, True):
        ours = _ours(_mmcv_cfg(k, steps, plain), _values(), grads, steps, in_place=in_place)
        assert _compare(ours, ref, params_tol=0.0) == 0.0
    assert len(ref[2]) < steps // k  # some updates were skipped


@pytest.mark.parametrize("k", [2, 3])
def test_mmcv_fp16_hook_float16_params(k):
    """float16 params: gradients accumulate in float16 (torch: a float16 model's ``.grad``);
    the scale, the multiplier and the skipped updates equal torch's exactly, the params to
    float16 rounding (ours step in float16, torch's master weights in float32)."""
    steps = 48
    grads = _gradients(steps, seed=3)
    ref = _torch_mmcv(grads, k, half_params=True)
    ours = _ours(_mmcv_cfg(k, steps), _values(), grads, steps, dtype=jnp.float16)
    _compare(ours, ref, params_tol=1e-2)
    assert 2 <= steps // k - len(ref[2]) <= steps // k - 3


def test_the_scale_and_multiplier_before_any_update():
    """What to multiply the first loss by, before any update: ``init_scale / k``."""
    params = {"w": jnp.zeros(3)}
    tx = oss.build_optimizer(_mmcv_cfg(4, 8), params, steps_per_epoch=8)
    state = tx.init(params)
    assert float(oss.loss_scale(state)) == 2.0**10 / 4
    assert float(oss.current_hparams(state)["loss_scale"]) == 2.0**10


# -- MMEngine: the real Runner and AmpOptimWrapper ------------------------------------------

def _mmengine_cfg(k, steps):
    return dict(
        optim_wrapper=dict(type="AmpOptimWrapper", loss_scale=dict(SCALER),
                           optimizer=dict(SGD), accumulative_counts=k),
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=steps))


@pytest.fixture
def float16_reference_loss(monkeypatch):
    """``mmengine_ref``'s toy model with its loss computed in float16 (autocast's float16
    layer), and the gradient its loss receives recorded: the multiplier torch applied."""
    from mmengine_ref import GradientModel

    multipliers = []

    def forward(self, inputs=None, data_samples=None, mode="tensor"):
        grads = self._given_grads[self._calls]
        self._calls += 1
        with torch.autocast("cpu", enabled=False):
            loss = torch.stack([(p.half() * grads[n].half()).sum().float()
                                for n, p in self.named_parameters()]).sum()
        loss.register_hook(lambda grad: multipliers.append(float(grad)))
        return {"loss": loss}

    monkeypatch.setattr(GradientModel, "forward", forward)
    return multipliers


@pytest.mark.parametrize("in_place", [False, True], ids=["update", "update_and_apply"])
@pytest.mark.parametrize("k,steps", [(2, 41), (3, 41), (4, 43)])
def test_mmengine_amp_accumulation_with_a_remainder(k, steps, in_place, float16_reference_loss):
    """``AmpOptimWrapper`` + ``accumulative_counts=k`` on a run whose length is not a multiple
    of ``k``: the last ``r`` losses are divided by ``r`` and applied at the last iteration."""
    from mmengine_ref import run_mmengine

    grads = _gradients(steps, seed=k)
    values = _values()
    names = jax_order(values)
    run = run_mmengine(_mmengine_cfg(k, steps), {n: values[n] for n in names},
                       [{n: g[n].astype(np.float32) for n in names} for g in grads],
                       steps_per_epoch=steps, dtype="float32")
    ref = (run.loss_scale.tolist(), float16_reference_loss,
           [t for t in range(steps) if run.stepped[t]], run.params)
    ours = _ours(_mmengine_cfg(k, steps), values, grads, steps, in_place=in_place)
    _compare(ours, ref)
    r = steps % k
    assert r and ref[1][-1] == np.float32(ref[0][-1]) / np.float32(r)  # the last group's
    assert run.stepped[steps - 1]
    groups = steps // k + 1
    assert 2 <= groups - len(ref[2]) <= groups - 3


def test_mmengine_amp_accumulation_resumed_from_orbax_checkpoints(tmp_path,
                                                                   float16_reference_loss):
    """Saved and restored (a rebuilt optimizer, fresh templates) before iterations 20 (a
    group's start), 37 (mid-group), 39 (the first of the remainder group, where a fresh
    state would say ``/ k``) and 40 (inside it): the multiplier of every later iteration,
    and so the whole run, still equal the real ``AmpOptimWrapper``'s."""
    from mmengine_ref import run_mmengine

    k, steps = 3, 41
    grads = _gradients(steps, seed=k)
    values = _values()
    names = jax_order(values)
    run = run_mmengine(_mmengine_cfg(k, steps), {n: values[n] for n in names},
                       [{n: g[n].astype(np.float32) for n in names} for g in grads],
                       steps_per_epoch=steps, dtype="float32")
    ref = (run.loss_scale.tolist(), float16_reference_loss,
           [t for t in range(steps) if run.stepped[t]], run.params)
    ours = _ours(_mmengine_cfg(k, steps), values, grads, steps,
                 restore_at=(20, 37, 39, 40), directory=str(tmp_path / "ckpt"))
    _compare(ours, ref)
    assert ours[1][39] == ours[1][40] == np.float32(ref[0][39]) / np.float32(2)
    assert ours[1][38] == np.float32(ref[0][38]) / np.float32(3)


def test_a_checkpoint_without_the_loss_divisor_is_refused(tmp_path):
    """A state saved before the loss divisor existed (an fp16 + accumulation run's
    ``AccumulateState`` alone) would make every later multiplier wrong: refused, naming it."""
    from optax_selfsup.transforms.accumulate import LossDivisorState

    def without_divisor(tree):
        if isinstance(tree, LossDivisorState):
            return without_divisor(tree.inner)
        if isinstance(tree, tuple) and hasattr(tree, "_fields"):
            return type(tree)(*(without_divisor(x) for x in tree))
        if isinstance(tree, (tuple, list)):
            return type(tree)(without_divisor(x) for x in tree)
        return tree

    cfg = _mmcv_cfg(4, 8)
    params = {"w": jnp.ones(3)}
    state = oss.build_optimizer(cfg, params, steps_per_epoch=8).init(params)
    save_checkpoint(str(tmp_path), 1, params=params, opt_state=without_divisor(state),
                    config=cfg)
    with pytest.raises(CheckpointMismatch, match="LossDivisorState.*\n.*loss_divisor"):
        restore_checkpoint(str(tmp_path), params=params, opt_state=state, config=cfg)


@settings(max_examples=8, deadline=None)
@given(k=st.integers(1, 5), steps=st.integers(1, 12))
def test_the_multiplier_follows_mmengine_optim_wrapper_at_every_iteration(k, steps):
    """MMEngine's own ``OptimWrapper`` (its divisor rule; ``AmpOptimWrapper`` inherits it)
    on a torch model: the gradient its loss receives is ``1 / f``; ours is ``scale / f``
    for every ``k`` and run length (remainder groups of every size, ``k`` = 1)."""
    from mmengine.optim import OptimWrapper

    model = torch.nn.Linear(1, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0),
                           accumulative_counts=k)
    wrapper.initialize_count_status(model, 0, steps)
    divisors = []
    for _ in range(steps):
        loss = model(torch.ones(1, 1)).sum()
        loss.register_hook(lambda grad: divisors.append(round(1.0 / float(grad))))
        wrapper.update_params(loss)
    assert len(divisors) == steps

    scaler = dict(init_scale=2.0**10, growth_interval=10**6)
    cfg = _mmengine_cfg(k, steps)
    cfg["optim_wrapper"]["loss_scale"] = scaler
    params = {"w": jnp.zeros(2)}
    tx = oss.build_optimizer(cfg, params, steps_per_epoch=steps)
    state = tx.init(params)
    ours = []
    for _ in range(steps):
        ours.append(float(oss.loss_scale(state)))
        _, state = tx.update({"w": jnp.ones(2)}, state, params)
    assert ours == [float(np.float32(2.0**10) / np.float32(f)) for f in divisors]
