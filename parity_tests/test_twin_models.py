"""Twin-model parity: the same small networks in Flax and torch, trained by both optimizers.

``optax_selfsup.models`` (Flax) and ``torch_ref.models`` (torch, MMSelfSup names) hold
the same SimCLR / BYOL / MAE networks. After a weight transfer
(``flax_variables_from_torch``) their losses and gradients agree; then each side
trains 100 iterations of a recipe from ``configs/`` on identical batches, computing
its own gradients from its own model, the torch side driven by ``torch_ref.build``
+ ``torch_ref.Runner`` (mmcv hook order) as ``recipe_harness.run_torch`` does:

- float64 (``jax.enable_x64`` around the JAX side only, torch double): parameters
  agree to 1e-9 (relative, per tensor: ``max|a-b| / max|b|``) at every iteration,
  so the optimizers, schedules, paramwise groups, accumulation and BYOL's
  momentum target are the same computation; forward-pass rounding is ~1e-16.
- float32: the two forward passes round differently (~1e-7 relative per
  operation); training feeds those differences back through the updates. The
  drift per iteration is recorded and bounded (see ``FLOAT32_EARLY_TOLERANCE`` and
  ``ROUNDING_FACTOR``).

Run lengths are shortened with ``oss.merge_options`` so that warmup end, epoch
boundaries, accumulation flushes and the end of the cosine fall inside 100
iterations. ``python parity_tests/test_twin_models.py`` prints the drift curves.
"""

from __future__ import annotations

import functools
import os
import warnings

import jax
import numpy as np
import optax
import pytest
import torch

import optax_selfsup as oss
import torch_ref
from optax_selfsup import models as flax_models
from torch_ref import models as torch_models
from torch_ref.param_groups import param_groups

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
ITERS = 100
BATCH = 4
IMAGE = 16

# name: (model, config, steps_per_epoch, overrides)
CASES = {
    # LARS, linear warmup 10 epochs = 50 iterations, cosine by epoch to iteration 100
    "simclr": ("simclr_resnet", "selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py", 5,
               ["runner.max_epochs=20"]),
    # LARS lr 4.8, 8 micro-batches per update (upstream's BYOLHook follows the same interval),
    # 100 = 12*8 + 4: the last 4 micro-batches are flushed at iteration 99
    "byol": ("byol_resnet", "selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py", 5,
             ["runner.max_epochs=20", "optimizer_config.update_interval=8",
              "custom_hooks.0.update_interval=8"]),
    # AdamW + paramwise (no decay for ln / bias / pos_embed / mask_token / cls_token),
    # StepFixCosineAnnealing by iteration, warmup 10 epochs = 50 iterations
    "mae": ("mae_vit", "selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py", 5,
            ["runner.max_epochs=20", "lr_config.warmup_iters=10"]),
}
BYOL_BASE_MOMENTUM = 0.99  # MMSelfSup 0.11 configs/selfsup/_base_/models/byol.py

# float32. One forward + backward pass differs between the frameworks by rounding
# (~1e-7 relative per operation, different summation orders in convolutions, BatchNorm and
# attention): the first-iteration gradients agree to 1e-5 of the largest entry. Training
# feeds those differences back: with tiny batches and the recipes' learning rates (LARS
# applies the raw lr 0.3 / 4.8 to the excluded BatchNorm and bias tensors) the dynamics
# amplify any perturbation, float32 rounding included. Two checks follow from that:
# - during the first EARLY_ITERS iterations (warmup, lr still small) the twins agree to
#   FLOAT32_EARLY_TOLERANCE (measured: 3e-5 for SimCLR at iteration 10), which is 100x
#   below what a 1% lr error gives at the same point (test_float32_bound_catches_a_wrong_lr);
# - at every iteration the twin drift is at most ROUNDING_FACTOR times the drift of each
#   side's own float32 run from its float64 run (+ the early tolerance): the difference
#   between the frameworks is no larger than what float32 rounding alone does to either.
EARLY_ITERS = 10
FLOAT32_EARLY_TOLERANCE = 1e-4
ROUNDING_FACTOR = 10.0
FLOAT64_TOLERANCE = 1e-9


def load_case(name, extra=()):
    model, path, spe, overrides = CASES[name]
    cfg = oss.merge_options(oss.load_config(os.path.join(ROOT, path)), list(overrides) +
                            list(extra))
    return model, cfg, spe


def make_batches(model, iters, seed=123):
    """Identical inputs for both sides: float64 numpy, NHWC (Flax) / NCHW (torch)."""
    rng = np.random.default_rng(seed)
    spec = flax_models.MODELS[model]
    return [spec.make_batch(rng, BATCH, IMAGE, np.float64) for _ in range(iters)]


def torch_batch(batch, dtype):
    out = {}
    for key, value in batch.items():
        if value.ndim == 5:      # (N, 2, H, W, C) -> (N, 2, C, H, W)
            value = value.transpose(0, 1, 4, 2, 3)
        elif value.ndim == 4:    # NHWC -> NCHW
            value = value.transpose(0, 3, 1, 2)
        out[key] = torch.tensor(np.ascontiguousarray(value), dtype=dtype)
    return out


def make_twins(model, torch_dtype, seed=0):
    """The torch model (seeded init) and its Flax twin holding the same weights."""
    torch.manual_seed(seed)
    tmodel = torch_models.MODELS[model]().to(torch_dtype)
    if model == "byol_resnet":
        tmodel.reset_target()
    module, params, state = flax_models.init_model(model, seed, IMAGE, abstract=True)
    template = {"params": params}
    if "batch_stats" in state:
        template["batch_stats"] = state["batch_stats"]
    variables = flax_models.flax_variables_from_torch(tmodel.state_dict(), template)
    state = {"batch_stats": variables["batch_stats"]} if "batch_stats" in variables else {}
    if model == "byol_resnet":
        state["target"] = dict(
            params={k: variables["params"][k] for k in ("backbone", "neck")},
            batch_stats={k: variables["batch_stats"][k] for k in ("backbone", "neck")})
    return tmodel, module, variables["params"], state


def torch_named_flat(tmodel):
    return {n: p.detach().cpu().numpy().copy()
            for n, p in torch_models.trainable_named_parameters(tmodel)}


def flax_named_flat(params):
    return flax_models.torch_state_dict_from_flax({"params": params})


def rel_dev(ours: dict, ref: dict) -> float:
    """max over tensors of max|a - b| / max|b| (0 when both are equal)."""
    worst = 0.0
    for name, b in ref.items():
        diff = float(np.max(np.abs(ours[name] - b)))
        if diff:
            worst = max(worst, diff / max(float(np.max(np.abs(b))), 1e-300))
    return worst


def grad_dev(ours: dict, ref: dict) -> float:
    """max over tensors of max|a - b|, relative to the largest gradient entry of the model
    (a Linear followed by BatchNorm has a bias whose gradient is exactly zero in theory:
    both sides give rounding noise there, so a per-tensor ratio means nothing)."""
    scale = max(float(np.max(np.abs(g))) for g in ref.values())
    return max(float(np.max(np.abs(ours[n] - g))) for n, g in ref.items()) / scale


def run_torch(model, cfg, spe, batches, dtype):
    tmodel, *_ = make_twins(model, dtype)
    named = torch_models.trainable_named_parameters(tmodel)
    built = torch_ref.build(cfg, named, steps_per_epoch=spe)
    if model == "byol_resnet":
        hook = next(h for h in cfg["custom_hooks"] if h["type"] == "BYOLHook")
        built.hooks.append(torch_models.BYOLHook(
            tmodel, BYOL_BASE_MOMENTUM, hook.get("end_momentum", 1.0),
            hook.get("update_interval", 1)))
    params, losses, first = [], [], {}

    def gradients(it):
        loss = tmodel.loss(torch_batch(batches[it], dtype))
        grads = torch.autograd.grad(loss, [p for _, p in named])
        losses.append(float(loss.detach()))
        out = {n: g for (n, _), g in zip(named, grads)}
        if it == 0:
            first["grads"] = {n: g.numpy().copy() for n, g in out.items()}
            first["buffers"] = {n: b.numpy().copy() for n, b in tmodel.state_dict().items()
                                if n.endswith("running_mean")}
        return out

    torch_ref.Runner(built).train(gradients, record=lambda r: params.append(
        torch_named_flat(tmodel)), num_iters=len(batches))
    params.append(torch_named_flat(tmodel))
    return params, np.asarray(losses), first


def run_jax(model, cfg, spe, batches, dtype):
    _, module, params, state = make_twins(model, torch.float64 if dtype == np.float64
                                          else torch.float32)
    spec = flax_models.MODELS[model]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rules for tensors these small models lack
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=spe)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, model_state, opt_state, batch):
        (loss, model_state), grads = jax.value_and_grad(
            lambda p: spec.loss(module, p, model_state, batch), has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), model_state, opt_state, loss, grads

    hook = next((h for h in cfg.get("custom_hooks") or [] if h["type"] == "BYOLHook"), None)
    max_iters = cfg["runner"]["max_epochs"] * spe
    history, losses, first = [], [], {}
    for it, batch in enumerate(batches):
        history.append(flax_named_flat(params))
        batch = {k: v.astype(dtype) for k, v in batch.items()}
        params, state, opt_state, loss, grads = step(params, state, opt_state, batch)
        losses.append(float(loss))
        if it == 0:
            first["grads"] = flax_named_flat(grads)
            if "batch_stats" in state:
                stats = {"batch_stats": state["batch_stats"]}
                first["buffers"] = {
                    t: np.asarray(v) for t, v in zip(
                        flax_models.torch_name_table(stats).values(), jax.tree.leaves(stats))
                    if t.endswith("running_mean")}
        if model == "byol_resnet" and (it + 1) % hook.get("update_interval", 1) == 0:
            m = flax_models.byol_target_momentum(it, max_iters, BYOL_BASE_MOMENTUM,
                                                 hook.get("end_momentum", 1.0))
            state = flax_models.byol_update_target(state, params, m)
    history.append(flax_named_flat(params))
    return history, np.asarray(losses), first


@functools.cache
def twin_run(name, dtype):
    """Both sides trained ``ITERS`` iterations (cached: one compile per case and dtype).

    ``devs[it]``: relative parameter deviation before iteration ``it`` (the last entry:
    after the run); ``loss_dev``: per-iteration relative loss deviation; ``moved``: how
    far torch's parameters moved; ``ours`` / ``ref``: the first iteration's gradients and
    BatchNorm running means (after its forward passes)."""
    model, cfg, spe = load_case(name)
    batches = make_batches(model, ITERS)
    if dtype == np.float64:
        with jax.enable_x64(True):
            ours, our_losses, our_first = run_jax(model, cfg, spe, batches, np.float64)
        ref, ref_losses, ref_first = run_torch(model, cfg, spe, batches, torch.float64)
    else:
        ours, our_losses, our_first = run_jax(model, cfg, spe, batches, np.float32)
        ref, ref_losses, ref_first = run_torch(model, cfg, spe, batches, torch.float32)
    run = dict(devs=np.array([rel_dev(o, r) for o, r in zip(ours, ref)]),
               loss_dev=np.abs(our_losses - ref_losses) / np.abs(ref_losses),
               moved=rel_dev(ref[0], ref[-1]), ours=our_first, ref=ref_first,
               history=ours, ref_history=ref)
    if dtype == np.float32:  # each side against its own float64 run: rounding alone
        exact = twin_run(name, np.float64)
        run["self_drift"] = np.array([
            max(rel_dev(o, o64), rel_dev(r, r64)) for o, r, o64, r64 in zip(
                ours, ref, exact["history"], exact["ref_history"])])
    return run


# ---------------------------------------------------------------- forward and gradients
# (the first iteration of the cached training runs: same weights, same batch)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_loss_and_gradients_agree(name):
    run = twin_run(name, np.float64)
    assert run["loss_dev"][0] <= 1e-12, run["loss_dev"][0]
    assert set(run["ours"]["grads"]) == set(run["ref"]["grads"])
    dev = grad_dev(run["ours"]["grads"], run["ref"]["grads"])
    assert dev <= 1e-11, dev
    print(f"\n{name} float64 first iteration: loss {run['loss_dev'][0]:.1e}, gradients {dev:.1e}")
    if run["ref"].get("buffers"):  # BatchNorm running means after the forward passes
        assert set(run["ours"]["buffers"]) == set(run["ref"]["buffers"])
        assert rel_dev(run["ours"]["buffers"], run["ref"]["buffers"]) <= 1e-12


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_loss_and_gradients_agree_to_rounding(name):
    run = twin_run(name, np.float32)
    assert run["loss_dev"][0] <= 1e-5, run["loss_dev"][0]
    dev = grad_dev(run["ours"]["grads"], run["ref"]["grads"])
    print(f"\n{name} float32 first iteration: loss {run['loss_dev'][0]:.1e}, gradients {dev:.1e}")
    assert dev <= 1e-5, dev


# ---------------------------------------------------------------- per-parameter tables


@pytest.mark.parametrize("name", sorted(CASES))
def test_paramwise_tables_select_the_same_tensors(name):
    model, cfg, spe = load_case(name)
    tmodel, _, params, _ = make_twins(model, torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = {r["name"]: r for r in oss.describe(cfg, params, steps_per_epoch=spe)}
    kwargs, groups = param_groups(cfg["optimizer"], torch_models.trainable_named_parameters(
        tmodel))
    names = [n for n, _ in torch_models.trainable_named_parameters(tmodel)]
    assert set(rows) == set(names)
    for n, group in zip(names, groups):
        assert rows[n]["lr"] == pytest.approx(group.get("lr", kwargs["lr"]), rel=1e-12), n
        assert rows[n]["weight_decay"] == pytest.approx(
            group.get("weight_decay", kwargs.get("weight_decay", 0.0)), rel=1e-12), n
        assert rows[n]["lars_exclude"] == bool(group.get("lars_exclude", False)), n
    decays = {r["weight_decay"] for r in rows.values()}
    assert len(decays) == 2 and 0.0 in decays  # the rules split the model in two


# ---------------------------------------------------------------- 100 training iterations


@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_training_agrees_every_iteration(name):
    run = twin_run(name, np.float64)
    devs, loss_dev, moved = run["devs"], run["loss_dev"], run["moved"]
    worst = int(np.argmax(devs))
    print(f"\n{name} float64: max deviation {devs.max():.2e} (iteration {worst}), loss "
          f"{loss_dev.max():.2e}, parameters moved {moved:.2e}")
    assert devs.max() <= FLOAT64_TOLERANCE, f"iteration {worst}: relative deviation {devs.max()}"
    assert loss_dev.max() <= FLOAT64_TOLERANCE
    assert moved > 1e-3  # the run really trained


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_training_drift_is_explained_by_rounding(name):
    run = twin_run(name, np.float32)
    devs, self_drift = run["devs"], run["self_drift"]
    print(f"\n{name} float32 twin drift / own float32-vs-float64 drift: " + ", ".join(
        f"it{i}={devs[i]:.1e}/{self_drift[i]:.1e}" for i in (1, 10, 25, 50, 75, ITERS)))
    early = devs[:EARLY_ITERS + 1].max()
    assert early <= FLOAT32_EARLY_TOLERANCE, f"drift {early:.3g} in the first {EARLY_ITERS}"
    bound = ROUNDING_FACTOR * self_drift + FLOAT32_EARLY_TOLERANCE
    worst = int(np.argmax(devs / bound))
    print(f"{name}: largest twin / own-rounding ratio "
          f"{np.max(devs[1:] / np.maximum(self_drift[1:], 1e-30)):.2f}")
    assert np.all(devs <= bound), (f"iteration {worst}: twin drift {devs[worst]:.3g} > "
                                   f"{ROUNDING_FACTOR} x own rounding drift "
                                   f"{self_drift[worst]:.3g}")


def test_float32_bound_catches_a_wrong_lr():
    """The early float32 tolerance is tight enough to see a 1% lr change on one side."""
    model, cfg, spe = load_case("simclr")
    wrong = oss.merge_options(cfg, [f"optimizer.lr={cfg['optimizer']['lr'] * 1.01}"])
    ref, _, _ = run_torch(model, wrong, spe, make_batches(model, EARLY_ITERS + 1),
                          torch.float32)
    ours = twin_run("simclr", np.float32)["history"]
    assert rel_dev(ours[EARLY_ITERS], ref[EARLY_ITERS]) > 10 * FLOAT32_EARLY_TOLERANCE


# ---------------------------------------------------------------- weight transfer


def test_transfer_round_trip_and_errors():
    tmodel, _, params, state = make_twins("simclr_resnet", torch.float32)
    variables = {"params": params, "batch_stats": state["batch_stats"]}
    back = flax_models.torch_state_dict_from_flax(variables)
    for name, value in tmodel.state_dict().items():
        if name.endswith("num_batches_tracked"):
            assert name not in back
            continue
        np.testing.assert_array_equal(back[name], value.numpy(), err_msg=name)
    sd = dict(tmodel.state_dict())
    sd.pop("backbone.layer2.0.downsample.1.running_var")
    with pytest.raises(KeyError, match="downsample.1.running_var"):
        flax_models.flax_variables_from_torch(sd, variables)
    sd = dict(tmodel.state_dict())
    sd["neck.fc0.weight"] = sd["neck.fc0.weight"][:, :3]
    with pytest.raises(ValueError, match="neck.fc0.weight"):
        flax_models.flax_variables_from_torch(sd, variables)
    sd = dict(tmodel.state_dict(), **{"neck.extra.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match="neck.extra.weight"):
        flax_models.flax_variables_from_torch(sd, variables)
    flax_models.flax_variables_from_torch(sd, variables, strict=False)


if __name__ == "__main__":  # the drift curves quoted in docs/twin-parity.md
    for case in CASES:
        for dt in (np.float64, np.float32):
            r = twin_run(case, dt)
            d, ld, mv = r["devs"], r["loss_dev"], r["moved"]
            marks = (1, 5, 10, 25, 50, 51, 75, 90, ITERS)
            print(f"{case:7s} {np.dtype(dt).name}: max {d.max():.2e} (it {int(np.argmax(d))}), "
                  f"loss {ld.max():.2e}, moved {mv:.2e}; "
                  + " ".join(f"{i}:{d[i]:.1e}" for i in marks))
            if "self_drift" in r:
                print("        own float32-vs-float64: "
                      + " ".join(f"{i}:{r['self_drift'][i]:.1e}" for i in marks))
