"""Features that were checked only against our own code, now against torch / torch_ref.

- the ``grad_norm`` that ``oss.current_hparams`` reports (what mmcv logs) at every update,
  with accumulation, frozen layers and fp16 skips: against the norm torch's
  ``clip_grad_norm_`` returns inside torch_ref's optimizer hook;
- ``oss.paramwise_values`` / ``oss.regex_mask`` (hand-written expectations before):
  against the param groups torch_ref's MMSelfSup constructor makes from the same rules;
- ``oss.dynamic_loss_scale`` standing alone in an ``optax.chain`` (only "the scale stays
  4" before): params and scale at every step against torch's ``GradScaler``.
"""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optax_selfsup as oss
import torch_ref

from recipe_harness import MODEL, TorchLayout, gradients, initial_values, jax_order, run_torch

RUNNER = dict(type="IterBasedRunner", max_iters=24)
SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4)

SUBSET = ("backbone.conv1.weight", "backbone.bn1.weight", "backbone.bn1.bias",
          "neck.mlp.0.weight", "neck.mlp.0.bias", "neck.zero_init.weight",
          "head.predictor.0.weight")
GRAD_NORM_CASES = {
    "accumulate-frozen-l2": dict(optimizer_config=dict(
        update_interval=2, grad_clip=dict(max_norm=1.0),
        frozen_layers_cfg={"neck": 9})),
    "inf-norm": dict(optimizer_config=dict(grad_clip=dict(max_norm=0.5, norm_type="inf"))),
    "fp16-accumulate": dict(optimizer_config=dict(update_interval=3, grad_clip=dict(
        max_norm=2.0)), fp16=dict(loss_scale=dict(init_scale=2.0**8, growth_interval=2))),
}


def _our_grad_norms(cfg, values, grads, fp16):
    """(grad_norm reported after each update that was applied, their iterations)."""
    tree = TorchLayout.to_tree(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = oss.build_optimizer(cfg, tree, steps_per_epoch=len(grads))
    state = tx.init(tree)

    @jax.jit
    def step(p, s, g):
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    norms, at = [], []
    for it, g in enumerate(grads):
        g = TorchLayout.to_tree(g)
        if fp16:
            scale = oss.loss_scale(state)
            g = jax.tree.map(lambda x: x * scale, g)  # noqa: B023 - used at once
        tree, state = step(tree, state, g)
        if bool(oss.has_updated(state)):
            norms.append(float(oss.current_hparams(state)["grad_norm"]))
            at.append(it)
    return np.asarray(norms), at


@pytest.mark.parametrize("name", list(GRAD_NORM_CASES))
def test_reported_grad_norm_matches_torch_at_every_update(name):
    cfg = dict(optimizer=SGD, runner=RUNNER, **GRAD_NORM_CASES[name])
    fp16 = "fp16" in cfg
    keep = lambda d: {n: v for n, v in d.items() if n in SUBSET}  # noqa: E731 - compiles fast
    values = keep(initial_values())
    grads = [keep(g) for g in gradients(24, inf_at=(5, 17) if fp16 else ())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        *_, built = run_torch(cfg, values, grads, 24)
    k = cfg["optimizer_config"].get("update_interval", 1)
    # torch_ref's hook logs a norm at every update, inf where the fp16 step is skipped
    ref = np.asarray(built.optimizer_hook.grad_norms)
    ref_at = [(i + 1) * k - 1 for i in range(len(ref))]
    applied = np.isfinite(ref)
    ours, at = _our_grad_norms(cfg, values, grads, fp16)
    assert at == [i for i, ok in zip(ref_at, applied) if ok]
    assert applied.sum() == len(ref) - (2 if fp16 else 0)
    np.testing.assert_allclose(ours, ref[applied], rtol=2e-6)


RULES = {
    "bn": dict(weight_decay=0.0, lr_mult=2.0),
    "bias": dict(lr=0.5, weight_decay_mult=3.0),
    "backbone.bn1.bias": dict(lr_mult=0.1, weight_decay_mult=0.5),
    r"(bn|gn)(\d+)?.(weight|bias)": dict(lars_exclude=True),
    "neck.mlp": dict(momentum=0.5),
}


@pytest.mark.parametrize("key", ["lr", "weight_decay", "momentum", "lars_exclude"])
def test_paramwise_values_match_torch_ref_param_groups(key):
    optimizer_cfg = dict(type="LARS", lr=0.3, momentum=0.9, weight_decay=1e-6,
                         paramwise_options=RULES)
    names = jax_order(dict.fromkeys(MODEL, 0))
    params = TorchLayout.to_tree({n: np.zeros(MODEL[n], np.float32) for n in names})
    default = optimizer_cfg.get(key, False)
    ours = dict(zip(oss.torch_names(params),
                    jax.tree.leaves(oss.paramwise_values(params, RULES, key, default))))
    named = [(n, torch.nn.Parameter(torch.zeros(1))) for n in names]
    _, groups = torch_ref.param_groups.param_groups(optimizer_cfg, named)
    for name, group in zip(names, groups):
        assert ours[name] == pytest.approx(group.get(key, default)), (name, key)


def test_regex_mask_matches_the_parameters_torch_ref_rules_select():
    names = jax_order(dict.fromkeys(MODEL, 0))
    params = TorchLayout.to_tree({n: np.zeros(MODEL[n], np.float32) for n in names})
    named = [(n, torch.nn.Parameter(torch.zeros(1))) for n in names]
    for pattern in RULES:
        mask = dict(zip(oss.torch_names(params), jax.tree.leaves(oss.regex_mask(params,
                                                                               pattern))))
        _, groups = torch_ref.param_groups.param_groups(
            dict(type="SGD", lr=0.1, paramwise_options={pattern: dict(lr=0.5)}), named)
        selected = {n for n, g in zip(names, groups) if "lr" in g}
        assert {n for n in names if mask[n]} == selected, pattern
        assert selected == {n for n in names if re.search(pattern, n)}


def test_dynamic_loss_scale_around_a_chain_matches_grad_scaler():
    """``dynamic_loss_scale(chain(clip_grad_norm, sgd))``: torch's unscale_, clip, step,
    update; the scale and the params compared after every step."""
    rng = np.random.default_rng(4)
    values = {"w": rng.normal(size=(3, 2)).astype(np.float32),
              "b": rng.normal(size=2).astype(np.float32)}
    grads = [{k: rng.normal(size=v.shape).astype(np.float32) for k, v in values.items()}
             for _ in range(14)]
    for it in (3, 8, 9):
        grads[it]["b"][1] = np.inf
    tx = oss.dynamic_loss_scale(optax.chain(oss.clip_grad_norm(1.0),
                                            oss.sgd(0.1, momentum=0.9)),
                                init_scale=2.0**6, growth_interval=2)
    params = {k: jnp.asarray(v) for k, v in values.items()}
    state = tx.init(params)
    update = jax.jit(tx.update)
    ps = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in values.items()}
    opt = torch.optim.SGD(list(ps.values()), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**6, growth_interval=2)
    scales = []
    for g in grads:
        scaler.scale(torch.ones(()))
        scale = float(oss.loss_scale(state))
        assert scale == scaler.get_scale()
        scales.append(scale)
        for k, p in ps.items():
            p.grad = torch.tensor(g[k]) * scale
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(list(ps.values()), 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
        updates, state = update({k: jnp.asarray(v) * scale for k, v in g.items()}, state,
                                params)
        params = optax.apply_updates(params, updates)
        for k, p in ps.items():
            np.testing.assert_allclose(np.asarray(params[k]), p.detach().numpy(), rtol=1e-6,
                                       atol=1e-7)
    assert len(set(scales)) >= 3
