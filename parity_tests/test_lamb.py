"""Lamb (and LARS) against MMPretrain 1.2.0's own classes, executed from its installed files.

``torch_ref.mmengine.upstream.load_mmpretrain`` runs ``mmpretrain/engine/optimizers/lamb.py`` and
``lars.py`` unchanged (``import mmpretrain`` itself needs mmcv). Deviations are
``max |dp| / max(1, |p|)`` per run: float32 <= 1e-5, float64 <= 1e-12.

float64 runs: upstream's clip divisor is a float32 value (its accumulator is float32), the
square root of a float32 sum. torch 2.13's CPU ``sqrt`` is not correctly rounded (17% of
float32 inputs are a ulp off, 1.2% of float64 ones; numpy, JAX and CUDA round correctly), so
a divisor a float32 ulp off moves float64 trajectories by ~1e-8. ``ieee_sqrt()`` runs the
upstream Lamb with a correctly rounded ``torch.sqrt`` (its only use there is that norm);
the float64 tests compare against both.
"""

import contextlib
import os
import warnings
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optax_selfsup as oss
import torch_ref
from torch_ref.checkpoint import checkpoint_dict
from torch_ref.mmengine.upstream import load_mmpretrain

_FILES = load_mmpretrain()
LAMB_MODULE = _FILES["engine/optimizers/lamb.py"]
UpstreamLamb = LAMB_MODULE.Lamb
UpstreamLARS = _FILES["engine/optimizers/lars.py"].LARS
torch_ref.register_optimizer("Lamb", UpstreamLamb)  # for the config-level reference runs

TOL = {np.float32: 1e-5, np.float64: 1e-12}
TORCH = {np.float32: torch.float32, np.float64: torch.float64, jnp.float16: torch.float16,
         jnp.bfloat16: torch.bfloat16}

# torch param groups, in the params' leaf order (sorted names): the upstream clip sums the
# tensors' squares in float32 in this order, ours in leaf order
SHAPES = {"a_matrix": (6, 4), "a_zeros": (5,), "b_conv": (3, 2, 3, 3), "b_vector": (7,),
          "c_late": (4,), "c_zero_grad": (6,), "d_bias": (3,)}
GROUPS = [
    (["a_matrix", "a_zeros"], dict(lr=0.02, weight_decay=0.05)),
    # weight_decay 0: no trust ratio
    (["b_conv", "b_vector"], dict(lr=0.01, weight_decay=0.0, betas=(0.85, 0.99))),
    (["c_late", "c_zero_grad"], dict(lr=0.05, weight_decay=0.01, betas=(0.8, 0.995),
                                     trust_clip=True, grad_averaging=False)),
    # weight_decay 0 but always_adapt: trust ratio
    (["d_bias"], dict(lr=0.03, weight_decay=0.0, always_adapt=True, bias_correction=False)),
]
DEFAULTS = dict(lr=1e-3, bias_correction=True, betas=(0.9, 0.999), weight_decay=0.01,
                grad_averaging=True, trust_clip=False, always_adapt=False)
# global gradient norm about 10 * scale: the clip (max_grad_norm=1) engages at scales > 0.1
SCALES = [0.5, 0.02, 1.0, 0.05, 0.03, 2.0, 0.01, 0.3, 0.08, 3.0] * 3


class _TorchWithIeeeSqrt:
    """``torch`` as upstream's lamb.py sees it, but with a correctly rounded ``sqrt``."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def sqrt(x):
        return torch.from_numpy(np.sqrt(x.detach().cpu().numpy())).to(x.device)


@contextlib.contextmanager
def ieee_sqrt(on=True):
    if not on:
        yield
        return
    with mock.patch.object(LAMB_MODULE, "torch", _TorchWithIeeeSqrt()):
        yield


def values_and_grads(shapes, scales, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    values = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
    grads = [{k: (rng.normal(size=s) * scale).astype(dtype) for k, s in shapes.items()}
             for scale in scales]
    for k in values:
        if k.endswith("zeros"):
            values[k][...] = 0
    for g in grads:
        for k in g:
            if k.endswith("zero_grad"):
                g[k][...] = 0
    return values, grads


def group_masks(steps):
    """c_late has no gradient before update 4; group b none at update 6 (upstream: None)."""
    masks = [{k: True for k in SHAPES} for _ in range(steps)]
    for t in range(4):
        masks[t]["c_late"] = False
    masks[6]["b_conv"] = masks[6]["b_vector"] = False
    return masks


def run_upstream(cls, values, grads, dtype, *, groups=None, masks=None, kwargs=None,
                 before_step=None):
    """Params after every update, and the optimizer. ``masks[t][name]`` False: no gradient."""
    named = {k: torch.nn.Parameter(torch.tensor(v, dtype=TORCH[dtype]))
             for k, v in values.items()}
    groups = groups or [(list(named), {})]
    opt = cls([dict(params=[named[n] for n in names], **o) for names, o in groups],
              **(kwargs or {}))
    out = []
    for t, g in enumerate(grads):
        for k, p in named.items():
            has = masks is None or masks[t][k]
            p.grad = torch.tensor(g[k], dtype=TORCH[dtype]) if has else None
        if before_step is not None:
            before_step(opt, t)
        opt.step()
        out.append({k: p.detach().double().numpy().copy() for k, p in named.items()})
    return out, opt, named


def run_ours(tx, values, grads, dtype, masks=None):
    params = {k: jnp.asarray(v, dtype) for k, v in values.items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state, g, mask):
        updates, state = tx.update(g, state, params, grad_mask=mask)
        return optax.apply_updates(params, updates), state

    out = []
    for t, g in enumerate(grads):
        mask = None if masks is None else {k: jnp.asarray(v) for k, v in masks[t].items()}
        params, state = step(params, state, {k: jnp.asarray(v, dtype) for k, v in g.items()},
                             mask)
        out.append({k: np.asarray(v) for k, v in params.items()})
    return out, state


def deviation(ours, ref):
    """max over updates and tensors of max |dp| / max(1, |p|)."""
    return max(float(np.max(np.abs(o[k].astype(np.float64) - r[k]) / np.maximum(1.0, np.abs(r[k])),
                            initial=0.0)) for o, r in zip(ours, ref) for k in r)


def per_leaf(groups, key, default):
    return {n: opts.get(key, default) for names, opts in groups for n in names}


def lamb_per_leaf(groups):
    return {k: per_leaf(groups, k, v) for k, v in DEFAULTS.items()}


def global_norms(grads, masks):
    return [np.sqrt(sum(np.sum(g[k].astype(np.float64) ** 2) for k in g if masks[t][k]))
            for t, g in enumerate(grads)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_lamb_groups_match_upstream(dtype):
    values, grads = values_and_grads(SHAPES, SCALES)
    masks = group_masks(len(grads))
    norms = global_norms(grads, masks)
    assert sum(n > 1 for n in norms) >= 8 and sum(n < 1 for n in norms) >= 8  # clip both ways
    with ieee_sqrt(dtype == np.float64):
        ref, opt, named = run_upstream(UpstreamLamb, values, grads, dtype, groups=GROUPS,
                                       masks=masks)
    with jax.enable_x64(dtype == np.float64):
        ours, state = run_ours(oss.lamb(**lamb_per_leaf(GROUPS)), values, grads, dtype, masks)
        assert deviation(ours, ref) <= TOL[dtype]
        if dtype == np.float64:  # torch's own CPU sqrt: divisors a float32 ulp off
            plain, _, _ = run_upstream(UpstreamLamb, values, grads, dtype, groups=GROUPS,
                                       masks=masks)
            assert 1e-12 < deviation(ours, plain) <= 1e-7
        # torch's state: one step count per group, advanced at every update; the moments
        for names, _ in GROUPS:
            group = next(g for g in opt.param_groups if g["params"][0] is named[names[0]])
            for n in names:
                assert int(state.step[n]) == group["step"] == len(grads)
                for slot in ("exp_avg", "exp_avg_sq"):
                    ref_slot = opt.state[named[n]][slot].numpy()
                    np.testing.assert_allclose(state.slots[n][slot], ref_slot,
                                               rtol=100 * TOL[dtype], atol=TOL[dtype])
    for t in range(4):  # no gradient: untouched (its first update has the group's t = 5)
        np.testing.assert_array_equal(ours[t]["c_late"], values["c_late"].astype(dtype))
    moved = max(float(np.max(np.abs(ref[-1][k] - values[k]))) for k in values)
    assert moved > 1e-2


def test_zero_d_parameters_follow_the_shape_1_trajectory():
    """Upstream cannot step a 0-d parameter; ours follows the same formula, so its
    trajectory is upstream's for the same value as a shape-[1] parameter."""
    values, grads = values_and_grads({"scalar": (), "w": (3, 2)}, SCALES[:12], seed=3)
    as_vector = lambda d: {k: np.reshape(v, (1,)) if k == "scalar" else v for k, v in d.items()}
    with pytest.raises(RuntimeError, match=r"doesn't match the broadcast shape \[1\]"):
        run_upstream(UpstreamLamb, values, grads[:1], np.float32, kwargs=dict(lr=0.05))
    with ieee_sqrt():
        ref, _, _ = run_upstream(UpstreamLamb, as_vector(values), [as_vector(g) for g in grads],
                                 np.float64, kwargs=dict(lr=0.05))
    with jax.enable_x64(True):
        ours, _ = run_ours(oss.lamb(lr=0.05), values, grads, np.float64)
    assert deviation([as_vector(o) for o in ours], ref) <= 1e-12


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision_rounds_as_upstream(dtype):
    """torch computes each float16 / bfloat16 operation in float32 and stores it rounded (the
    moments, the denominator, the update); so do we: within one ulp of the stored dtype."""
    values, grads = values_and_grads({"a": (6, 4), "b": (5,)}, [0.5, 0.02, 1.0, 0.05] * 3,
                                     seed=1)
    ref, _, _ = run_upstream(UpstreamLamb, values, grads, dtype, kwargs=dict(lr=0.01))
    ours, _ = run_ours(oss.lamb(lr=0.01), values, grads, dtype)
    assert deviation(ours, ref) <= float(jnp.finfo(dtype).eps)


def test_float64_clip_divisor_is_upstreams_float32_value():
    """Upstream's clip sums in float32 (its accumulator takes torch's default dtype) also for
    float64 parameters; a float64 sum would drift by about 6e-8 here."""
    values, grads = values_and_grads({"a": (40,), "b": (30,)}, [3.0, 5.0, 2.0] * 5, seed=7)
    with ieee_sqrt():
        ref, _, _ = run_upstream(UpstreamLamb, values, grads, np.float64, kwargs=dict(lr=0.1))
    with jax.enable_x64(True):
        ours, _ = run_ours(oss.lamb(lr=0.1), values, grads, np.float64)
    assert deviation(ours, ref) <= 1e-12


def test_momentum_schedule_drives_betas0_and_lr_schedule_standalone():
    values, grads = values_and_grads(SHAPES, SCALES[:20], seed=1)
    beta1 = lambda count: 0.95 - 0.01 * count  # optax-style schedules of the update count
    lr = lambda count: 0.05 / (1 + 0.2 * count)

    def set_hparams(opt, t):
        for g in opt.param_groups:
            g["lr"], g["betas"] = lr(t), (beta1(t), 0.999)

    with ieee_sqrt():
        ref, _, _ = run_upstream(UpstreamLamb, values, grads, np.float64,
                                 before_step=set_hparams)
    with jax.enable_x64(True):
        ours, state = run_ours(oss.lamb(lr=lr, betas=(beta1, 0.999)), values, grads,
                               np.float64)
        assert deviation(ours, ref) <= 1e-12
        assert float(oss.current_hparams(state)["momentum"]["a_matrix"]) == pytest.approx(0.76)


def test_inject_hyperparams_and_chain_match_upstream():
    """Traced hyperparameters (a traced weight_decay of 0 skips the trust ratio through a
    select) and a torch ``clip_grad_norm_`` chained in front."""
    values, grads = values_and_grads(SHAPES, SCALES[:10], seed=2)

    def clipped(opt, t):
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 4.0)

    for wd in (0.0, 0.02):
        ref, _, _ = run_upstream(UpstreamLamb, values, grads, np.float32,
                                 kwargs=dict(lr=0.03, weight_decay=wd, max_grad_norm=2.0),
                                 before_step=clipped)
        tx = optax.chain(oss.clip_grad_norm(4.0),
                         optax.inject_hyperparams(oss.lamb)(lr=0.03, weight_decay=wd,
                                                            max_grad_norm=2.0))
        ours, _ = run_ours(tx, values, grads, np.float32)
        assert deviation(ours, ref) <= 1e-5, wd


# -- from a config, against torch_ref's mmcv-order runner with the upstream Lamb --------------

CONFIG_SHAPES = {"backbone.conv.bias": (4,), "backbone.conv.weight": (4, 3, 3, 3),
                 "backbone.fc.weight": (5, 6), "head.fc.bias": (3,), "head.fc.weight": (3, 5)}
CONFIG = dict(
    optimizer=dict(type="Lamb", lr=5e-3, weight_decay=0.05, betas=(0.9, 0.98), max_grad_norm=2.0,
                   paramwise_options={"bias": dict(weight_decay=0.0),
                                      "head": dict(lr_mult=2.0, always_adapt=True)}),
    optimizer_config=dict(grad_clip=dict(max_norm=3.0), frozen_layers_cfg={"head": 4}),
    lr_config=dict(policy="CosineAnnealing", min_lr_ratio=0.01, by_epoch=False, warmup="linear",
                   warmup_iters=3, warmup_ratio=0.1),
    momentum_config=dict(policy="cyclic", target_ratio=(0.85 / 0.95, 1), cyclic_times=2,
                         step_ratio_up=0.4),
    runner=dict(type="IterBasedRunner", max_iters=24))
CONFIG_SCALES = [0.05, 0.3, 0.6, 0.02, 1.0, 0.2] * 4  # norms ~0.4 to ~9: both clips, or none


def torch_ref_run(cfg, values, grads, dtype, save_at=None):
    named = [(n, torch.nn.Parameter(torch.tensor(values[n], dtype=TORCH[dtype])))
             for n in sorted(values)]
    built = torch_ref.build(cfg, named, steps_per_epoch=len(grads))
    runner = torch_ref.Runner(built)
    history, saved, betas = [], {}, []

    def record(r):
        history.append({n: p.detach().numpy().copy() for n, p in named})
        betas.append(r.optimizer.param_groups[0]["betas"][0])
        if r.iter == save_at:
            saved["ckpt"] = checkpoint_dict(r, named)

    runner.train(lambda it: {k: torch.tensor(v, dtype=TORCH[dtype]) for k, v in grads[it].items()},
                 record=record, num_iters=len(grads))
    history.append({n: p.detach().numpy().copy() for n, p in named})
    return history[1:], saved.get("ckpt"), betas


def built_run(cfg, values, grads, dtype, params=None, state=None, layout=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = oss.build_optimizer(cfg, {k: jnp.asarray(v, dtype) for k, v in values.items()},
                                 steps_per_epoch=len(grads), layout=layout)
    params = {k: jnp.asarray(v, dtype) for k, v in values.items()} if params is None else params
    state = tx.init(params) if state is None else state
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    out, betas = [], []
    for g in grads:
        updates, state = step(params, state, {k: jnp.asarray(v, dtype) for k, v in g.items()})
        params = optax.apply_updates(params, updates)
        out.append({k: np.asarray(v) for k, v in params.items()})
        betas.append(float(oss.current_hparams(state)["momentum"]["backbone.fc.weight"]))
    return out, betas


@pytest.mark.parametrize("layout", [None, "flat"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_config_with_schedules_clip_and_frozen_layers_matches_upstream(dtype, layout):
    values, grads = values_and_grads(CONFIG_SHAPES, CONFIG_SCALES, seed=4)
    with ieee_sqrt(dtype == np.float64):
        ref, _, ref_betas = torch_ref_run(CONFIG, values, grads, dtype)
    with jax.enable_x64(dtype == np.float64):
        ours, betas = built_run(CONFIG, values, grads, dtype, layout=layout)
    assert deviation(ours, ref) <= TOL[dtype]
    np.testing.assert_allclose(betas, ref_betas, rtol=1e-6)
    assert max(ref_betas) == 0.9 and min(ref_betas) < 0.81  # the cyclic momentum on betas[0]


def test_continues_a_torch_checkpoint_with_the_group_step_counts():
    """The head is frozen for 4 iterations: torch's group count still advanced there."""
    values, grads = values_and_grads(CONFIG_SHAPES, CONFIG_SCALES, seed=5, dtype=np.float32)
    n = 6
    ref, ckpt, _ = torch_ref_run(CONFIG, values, grads, np.float32, save_at=n)
    template = {k: jnp.zeros(v.shape, jnp.float32) for k, v in values.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = oss.from_torch_checkpoint(ckpt, CONFIG, template, steps_per_epoch=len(grads))
    ours, _ = built_run(CONFIG, values, grads[n:], np.float32, resumed.params,
                        resumed.opt_state)
    assert deviation(ours, ref[n:]) <= 1e-5


# -- hypothesis: random hyperparameters ------------------------------------------------------

SETTINGS = settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 25)), deadline=None,
                    derandomize=os.environ.get("CI") == "true",
                    suppress_health_check=[HealthCheck.too_slow])
HYP_SHAPES = {"a": (5, 4), "b": (6,), "c": (3,)}


@st.composite
def lamb_cases(draw):
    floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False)
    kw = dict(lr=draw(floats(1e-4, 0.1)),
              betas=(draw(floats(0.0, 0.99)), draw(floats(0.5, 0.9999))),
              eps=draw(st.sampled_from([1e-8, 1e-6, 1e-3])),
              max_grad_norm=draw(st.sampled_from([0.0, 0.1, 1.0, 10.0, float("inf")])),
              **{f: draw(st.booleans()) for f in ("bias_correction", "grad_averaging",
                                                  "trust_clip", "always_adapt")})
    wds = [draw(st.sampled_from([0.0, 1e-4, 0.05])) for _ in range(2)]
    scale = draw(st.sampled_from([1e-3, 0.1, 1.0, 30.0]))
    return kw, wds, scale, draw(st.integers(0, 2**16))


@SETTINGS
@given(lamb_cases())
def test_random_lamb_configs_match_upstream(case):
    kw, wds, scale, seed = case
    values, grads = values_and_grads(HYP_SHAPES, [scale] * 20, seed=seed)
    groups = [(["a", "b"], dict(weight_decay=wds[0])), (["c"], dict(weight_decay=wds[1]))]
    tx = oss.lamb(**dict(kw, weight_decay={"a": wds[0], "b": wds[0], "c": wds[1]}))
    ours, _ = run_ours(tx, values, grads, np.float32)
    ref, _, _ = run_upstream(UpstreamLamb, values, grads, np.float32, groups=groups, kwargs=kw)
    error = deviation(ours, ref)
    if error > 1e-5:
        # float32 rounding amplified in both runs (a trust ratio of nearly cancelling
        # updates, 1 - beta^t near 0): then ours must be as close to upstream's float64
        # run as upstream's float32 run is
        truth, _, _ = run_upstream(UpstreamLamb, values, grads, np.float64, groups=groups,
                                   kwargs=kw)
        ours_off, torch_off = deviation(ours, truth), deviation(ref, truth)
        assert ours_off <= 2 * torch_off + 1e-6, (error, ours_off, torch_off)


# -- LARS against MMPretrain's file -----------------------------------------------------------

LARS_GROUPS = [
    (["a_matrix", "a_zeros"], dict(lr=0.2, weight_decay=1e-4)),
    (["b_conv", "b_vector"], dict(lr=0.1, weight_decay=0.0, lars_exclude=True)),
    (["c_late", "c_zero_grad"], dict(lr=0.3, weight_decay=1e-3, dampening=0.1)),
    (["d_bias"], dict(lr=0.05, weight_decay=1e-5, momentum=0.8, nesterov=True)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_lars_matches_mmpretrain_lars(dtype):
    values, grads = values_and_grads(SHAPES, SCALES, seed=6)
    masks = group_masks(len(grads))
    kwargs = dict(lr=0.1, momentum=0.9, eta=0.02, eps=1e-8)
    ref, _, _ = run_upstream(UpstreamLARS, values, grads, dtype, groups=LARS_GROUPS,
                             masks=masks, kwargs=kwargs)
    hp = {k: per_leaf(LARS_GROUPS, k, kwargs.get(k, d)) for k, d in
          dict(lr=0.1, weight_decay=0.0, lars_exclude=False, dampening=0.0, momentum=0.9,
               nesterov=False).items()}
    with jax.enable_x64(dtype == np.float64):
        ours, _ = run_ours(oss.lars(**{**kwargs, **hp}), values, grads, dtype, masks)
    assert deviation(ours, ref) <= TOL[dtype]


# -- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,key", [("Lamb", "max_grad_norm"), ("LARS", "eps")])
def test_shared_arguments_cannot_differ_per_parameter(name, key):
    """Upstream reads these from the optimizer, never from a param group: a paramwise value
    would silently do nothing there."""
    params = {"a": jnp.ones(3), "b": jnp.ones(2)}
    factory = oss.optimizer_factory(name)
    with pytest.raises(oss.ConfigError, match=f"{key} is optimizer-wide"):
        factory(**{"lr": 0.1, key: {"a": 1.0, "b": 2.0}}).init(params)
    factory(**{"lr": 0.1, key: {"a": 2.0, "b": 2.0}}).init(params)  # one value: fine
    cfg = dict(runner=dict(type="IterBasedRunner", max_iters=2), lr_config=dict(policy="fixed"),
               optimizer=dict(type=name, lr=0.1, paramwise_options={"b": {key: 5.0}}))
    with pytest.raises(oss.ConfigError, match=rf"\['b'\] sets {key}=5.0 \(it matches b\), but "
                                              rf"{name} reads one {key} for all param groups"):
        oss.build_optimizer(cfg, params, steps_per_epoch=1)


@pytest.mark.parametrize("kwargs,match", [
    (dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    (dict(max_grad_norm=-1.0), "max_grad_norm=-1.0 must be >= 0"),
    (dict(weight_decay=-0.1), "weight_decay=-0.1 must be >= 0"),
    (dict(max_grad_norm=None), "max_grad_norm=None must be a number"),
])
def test_lamb_refuses_values_that_cannot_train(kwargs, match):
    with pytest.raises(oss.ConfigError, match=match):
        oss.lamb(**kwargs)


def test_lamb_signature_is_upstreams():
    import inspect

    sig = inspect.signature(oss.lamb)
    assert {k: p.default for k, p in sig.parameters.items()} == dict(
        lr=1e-3, bias_correction=True, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01,
        grad_averaging=True, max_grad_norm=1.0, trust_clip=False, always_adapt=False)
    upstream = inspect.signature(UpstreamLamb.__init__).parameters
    assert {k: p.default for k, p in upstream.items() if k not in ("self", "params")} == \
        {k: p.default for k, p in sig.parameters.items()}
