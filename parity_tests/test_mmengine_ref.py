"""Sanity checks of the MMEngine reference (``torch_ref.mmengine``) against torch and by hand.

These test the harness, not optax_selfsup: that the real Runner is driven as MMEngine drives it
(scheduler timing and order, loops, accumulation, AMP, clipping, constructors, hooks,
checkpoints) and that what it records is what happened.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from torch_ref.mmengine import run_mmengine, upstream_layer_depth

SHAPES = {
    "backbone.conv1.weight": (4, 3, 3, 3),
    "backbone.bn1.weight": (4,),
    "backbone.bn1.bias": (4,),
    "backbone.dw.weight": (4, 1, 3, 3),
    "head.fc.weight": (2, 4),
    "head.fc.bias": (2,),
}
BN = {"backbone.bn1": ("bn", 4)}


def values_and_grads(steps, dtype=np.float64, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    values = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
    grads = [{k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
             for _ in range(steps)]
    return values, grads


def sgd(lr=0.1, **kw):
    return dict(optimizer=dict(type="SGD", lr=lr, **kw))


def iters(n):
    return dict(type="IterBasedTrainLoop", max_iters=n)


def epochs(n):
    return dict(type="EpochBasedTrainLoop", max_epochs=n)


def test_sgd_cosine_matches_torch_sgd_and_closed_form():
    values, grads = values_and_grads(12)
    cfg = dict(optim_wrapper=sgd(0.1, momentum=0.9, weight_decay=1e-2),
               param_scheduler=dict(type="CosineAnnealingLR", by_epoch=False, T_max=12,
                                    eta_min=1e-3),
               train_cfg=iters(12))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=5, dtype="float64")
    expected_lr = [1e-3 + (0.1 - 1e-3) * (1 + math.cos(math.pi * t / 12)) / 2 for t in range(12)]
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in values.items()}
    opt = torch.optim.SGD(params.values(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    for t in range(12):
        np.testing.assert_allclose(run.lr["backbone.conv1.weight"][t], expected_lr[t], rtol=1e-13)
        for group in opt.param_groups:
            group["lr"] = expected_lr[t]
        for k, p in params.items():
            p.grad = torch.tensor(grads[t][k])
        opt.step()
        for k, p in params.items():
            np.testing.assert_allclose(run.params[t][k], p.detach().numpy(), rtol=1e-12)
    assert run.stepped.all() and run.loss_scale is None and run.grad_norm is None
    assert run.momentum["head.fc.bias"].tolist() == [0.9] * 12
    buffer = run.optimizer_state["state"][run.param_index["head.fc.weight"]]["momentum_buffer"]
    np.testing.assert_allclose(buffer, opt.state[params["head.fc.weight"]]["momentum_buffer"])


def test_linear_warmup_hands_over_to_cosine_at_its_end():
    values, grads = values_and_grads(12)
    cfg = dict(optim_wrapper=sgd(0.4),
               param_scheduler=[
                   dict(type="LinearLR", start_factor=0.25, by_epoch=False, begin=0, end=4),
                   dict(type="CosineAnnealingLR", by_epoch=True, begin=1, end=3,
                        convert_to_iter_based=True)],
               train_cfg=epochs(3))
    lr = run_mmengine(cfg, values, grads, steps_per_epoch=4).lr["head.fc.bias"]
    # LinearLR reaches end_factor at its last step (total_iters = end - begin - 1 = 3)
    np.testing.assert_allclose(lr[:5], [0.1, 0.2, 0.3, 0.4, 0.4], rtol=1e-12)
    # cosine over iterations 4..11 (T_max = 2 epochs * 4), first value unchanged
    cos = [0.4 * (1 + math.cos(math.pi * s / 8)) / 2 for s in range(8)]
    np.testing.assert_allclose(lr[4:], cos, rtol=1e-12)


def _hand_chain(order, steps, base=0.1, eta_min=0.01, T=8, start=0.5, total=3):
    """Chainable LinearLR(begin=0, end=4) and CosineAnnealingLR(T_max=8) applied in ``order``."""
    def linear(v, s):
        if s == 0:
            return v * start
        if s > total:
            return v
        return v * (1 + (1 - start) / (total * start + (s - 1) * (1 - start)))

    def cosine(v, s):
        if s == 0:
            return v
        if (s - 1 - T) % (2 * T) == 0:
            return v + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * s / T)) / (1 + math.cos(math.pi * (s - 1) / T))
                * (v - eta_min) + eta_min)

    rule = {"LinearLR": (linear, 4), "CosineAnnealingLR": (cosine, T)}
    v, out = base, []
    for s in range(steps):
        for name in order:
            fn, end = rule[name]
            if s < end:
                v = fn(v, s)
        out.append(v)
    return out


def test_schedulers_apply_in_list_order_each_from_the_current_value():
    values, grads = values_and_grads(8)
    specs = {"LinearLR": dict(type="LinearLR", start_factor=0.5, by_epoch=False, end=4),
             "CosineAnnealingLR": dict(type="CosineAnnealingLR", by_epoch=False, T_max=8,
                                       eta_min=0.01, end=8)}
    seen = []
    for order in (("LinearLR", "CosineAnnealingLR"), ("CosineAnnealingLR", "LinearLR")):
        cfg = dict(optim_wrapper=sgd(0.1), param_scheduler=[specs[n] for n in order],
                   train_cfg=iters(8))
        lr = run_mmengine(cfg, values, grads, steps_per_epoch=8).lr["head.fc.bias"]
        np.testing.assert_allclose(lr, _hand_chain(order, 8), rtol=1e-12)
        seen.append(lr)
    assert np.abs(seen[0] - seen[1]).max() > 1e-4


def test_epoch_scheduler_steps_after_each_epoch_only():
    values, grads = values_and_grads(9)
    cfg = dict(optim_wrapper=sgd(0.8),
               param_scheduler=dict(type="StepLR", step_size=1, gamma=0.5),
               train_cfg=epochs(3))
    lr = run_mmengine(cfg, values, grads, steps_per_epoch=3).lr["backbone.conv1.weight"]
    assert lr.tolist() == [0.8] * 3 + [0.4] * 3 + [0.2] * 3


def test_by_epoch_scheduler_under_iter_loop_changes_nothing():
    values, grads = values_and_grads(6)
    for forgot in (dict(type="CosineAnnealingLR"), dict(type="MultiStepLR", milestones=[1])):
        cfg = dict(optim_wrapper=sgd(0.1), param_scheduler=forgot, train_cfg=iters(6))
        assert run_mmengine(cfg, values, grads, steps_per_epoch=2).lr["head.fc.bias"].tolist() \
            == [0.1] * 6
    cfg = dict(optim_wrapper=sgd(0.1), train_cfg=iters(6),
               param_scheduler=dict(type="MultiStepLR", milestones=[2], by_epoch=False))
    lr = run_mmengine(cfg, values, grads, steps_per_epoch=2).lr["head.fc.bias"]
    np.testing.assert_allclose(lr, [0.1] * 2 + [0.01] * 4)


def test_amp_skips_the_step_with_an_inf_and_halves_the_scale():
    values, grads = values_and_grads(5, np.float32)
    cfg = dict(optim_wrapper=dict(type="AmpOptimWrapper", **sgd(0.1)), train_cfg=iters(5))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=5, inject_inf={2: "head.fc.weight"})
    assert run.stepped.tolist() == [True, True, False, True, True]
    assert run.loss_scale.tolist() == [65536.0] * 3 + [32768.0] * 2
    for k in values:
        np.testing.assert_array_equal(run.params[2][k], run.params[1][k])
        np.testing.assert_allclose(run.params[0][k], values[k] - 0.1 * grads[0][k], rtol=1e-6)
    assert run.loss_scaler_state["scale"] == 32768.0
    static = dict(cfg, optim_wrapper=dict(cfg["optim_wrapper"], loss_scale=512.0))
    run = run_mmengine(static, values, grads, steps_per_epoch=5, inject_inf={2: "head.fc.weight"})
    assert run.stepped.tolist() == [True, True, False, True, True]
    assert run.loss_scale.tolist() == [512.0] * 5


def test_accumulation_with_a_remainder_steps_at_window_ends_and_divides_by_the_remainder():
    values, grads = values_and_grads(8)
    cfg = dict(optim_wrapper=dict(**sgd(1.0), accumulative_counts=3), train_cfg=iters(8))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=8, modules=BN)
    assert np.flatnonzero(run.stepped).tolist() == [2, 5, 7]
    for k in values:
        mean = [sum(grads[t][k] for t in w) / len(w) for w in ((0, 1, 2), (3, 4, 5), (6, 7))]
        np.testing.assert_allclose(run.params[7][k], values[k] - sum(mean), rtol=1e-12)
        np.testing.assert_array_equal(run.params[4][k], run.params[2][k])


def test_clip_grad_logs_the_pre_clip_norm_and_steps_with_clipped_grads():
    values, grads = values_and_grads(3)
    cfg = dict(optim_wrapper=dict(**sgd(1.0), clip_grad=dict(max_norm=1.0)), train_cfg=iters(3))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=3)
    norms = [math.sqrt(sum(float((g ** 2).sum()) for g in step.values())) for step in grads]
    np.testing.assert_allclose(run.grad_norm, norms, rtol=1e-12)
    for k in values:
        np.testing.assert_allclose(run.params[0][k],
                                   values[k] - grads[0][k] * (1.0 / (norms[0] + 1e-6)),
                                   rtol=1e-12)


def test_norm_decay_mult_needs_a_real_norm_module():
    values, grads = values_and_grads(1)
    cfg = dict(optim_wrapper=dict(**sgd(0.1, weight_decay=0.5),
                                  paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.2,
                                                     dwconv_decay_mult=0.3)),
               train_cfg=iters(1))
    typed = run_mmengine(cfg, values, grads, steps_per_epoch=1, modules=BN).groups
    plain = run_mmengine(cfg, values, grads, steps_per_epoch=1).groups
    assert typed["backbone.bn1.weight"]["weight_decay"] == 0.0
    assert typed["backbone.bn1.bias"]["weight_decay"] == 0.0  # norm > bias
    assert plain["backbone.bn1.weight"]["weight_decay"] == 0.5
    assert plain["backbone.bn1.bias"]["weight_decay"] == pytest.approx(0.1)
    assert typed["backbone.dw.weight"]["weight_decay"] == pytest.approx(0.15)  # inferred Conv2d
    assert typed["backbone.conv1.weight"]["weight_decay"] == 0.5


def test_registration_order_follows_the_module_tree():
    shapes = {"a.w": (2,), "b.conv.weight": (2, 2, 1, 1), "a.sub.w": (2,), "a.v": (2,),
              "b.conv.bias": (2,)}
    values, grads = values_and_grads(1, shapes=shapes)
    run = run_mmengine(dict(optim_wrapper=sgd(), train_cfg=iters(1)), values, grads,
                       steps_per_epoch=1)
    assert run.names == ["a.w", "a.v", "a.sub.w", "b.conv.weight", "b.conv.bias"]


def test_root_and_frozen_parameters():
    shapes = {"a.weight": (2, 2), "b.weight": (2,), "scale": ()}
    values, grads = values_and_grads(2, shapes=shapes)
    cfg = dict(optim_wrapper=dict(**sgd(0.1, weight_decay=0.5),
                                  paramwise_cfg=dict(custom_keys={".scale": dict(decay_mult=0)})),
               train_cfg=iters(2))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=2, frozen=["b.weight"])
    assert run.names == ["scale", "a.weight", "b.weight"]  # the root's own parameters first
    assert run.groups["scale"]["weight_decay"] == 0.0  # matched as '.scale'
    assert "b.weight" not in run.lr  # paramwise groups leave requires_grad=False out
    np.testing.assert_array_equal(run.params[1]["b.weight"], values["b.weight"])


def test_upstream_layer_depth_reads_the_backbone_facts_from_the_arch():
    swin = upstream_layer_depth(dict(backbone=dict(type="SwinTransformer", arch="base")))
    assert swin("backbone.stages.2.blocks.3.attn.w") == (8, 26)  # depths [2, 2, 18, 2]
    assert swin("head.fc.weight") == (25, 26)
    resnet = upstream_layer_depth(dict(type="MAE", backbone=dict(type="ResNet", depth=50)))
    assert resnet("backbone.layer3.5.conv1.weight") == (5, 8)
    convnext = upstream_layer_depth(dict(backbone=dict(type="ConvNeXt", arch="tiny")))
    assert convnext("backbone.norm3.weight") == (7, 8)  # depths[-2] = 9: max_layer_id 6


def test_custom_keys_lars_and_simsiam_hook_in_the_mmselfsup_scope():
    values, grads = values_and_grads(6, np.float32)
    cfg = dict(default_scope="mmselfsup",
               optim_wrapper=dict(
                   optimizer=dict(type="LARS", lr=0.3, momentum=0.9, weight_decay=1e-6),
                   paramwise_cfg=dict(custom_keys={
                       "bn": dict(decay_mult=0, lars_exclude=True),
                       "head": dict(fix_lr=True, lr_mult=2.0)})),
               custom_hooks=[dict(type="SimSiamHook", fix_pred_lr=True, lr=0.3,
                                  adjust_by_epoch=False, priority="HIGH")],
               param_scheduler=dict(type="CosineAnnealingLR", by_epoch=False, T_max=6),
               train_cfg=epochs(3))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=2, modules=BN)
    assert run.groups["backbone.bn1.bias"]["lars_exclude"] is True
    assert run.groups["backbone.bn1.bias"]["weight_decay"] == 0.0
    assert run.groups["head.fc.weight"]["lr"] == pytest.approx(0.6)
    assert run.groups["head.fc.weight"]["fix_lr"] is True
    assert run.lr["head.fc.weight"].tolist() == pytest.approx([0.3] * 6)
    assert run.lr["backbone.conv1.weight"][3] == pytest.approx(0.15)  # cosine half-way


def test_layer_decay_uses_upstream_vit_depths_from_the_arch():
    shapes = {"backbone.cls_token": (1, 1, 4), "backbone.layers.0.ffn.weight": (4, 4),
              "backbone.layers.11.ffn.weight": (4, 4), "backbone.ln1.weight": (4,),
              "head.fc.weight": (2, 4)}
    values, grads = values_and_grads(1, shapes=shapes)
    cfg = dict(default_scope="mmpretrain",
               model=dict(type="ImageClassifier",
                          backbone=dict(type="VisionTransformer", arch="b")),
               optim_wrapper=dict(optimizer=dict(type="AdamW", lr=1.0, weight_decay=0.05),
                                  constructor="LearningRateDecayOptimWrapperConstructor",
                                  paramwise_cfg=dict(layer_decay_rate=0.5, norm_decay_mult=0.0,
                                                     custom_keys={".cls_token": dict(
                                                         decay_mult=0.0, lr_mult=9.0)})),
               train_cfg=iters(1))
    groups = run_mmengine(cfg, values, grads, steps_per_epoch=1,
                          modules={"backbone.ln1": ("ln", 4)}).groups
    depth = {n: g["layer_id"] for n, g in groups.items()}
    assert depth == {"backbone.cls_token": 0, "backbone.layers.0.ffn.weight": 1,
                     "backbone.layers.11.ffn.weight": 12, "backbone.ln1.weight": 13,
                     "head.fc.weight": 13}
    for name, g in groups.items():
        assert g["lr"] == 0.5 ** (14 - depth[name] - 1)  # lr_mult ignored by this constructor
    assert groups["backbone.cls_token"]["weight_decay"] == 0.0
    assert groups["backbone.ln1.weight"]["weight_decay"] == 0.0


def test_lamb_and_weight_decay_cosine_keep_zero_decay_groups_at_zero():
    values, grads = values_and_grads(4, np.float32)
    cfg = dict(default_scope="mmpretrain",
               optim_wrapper=dict(optimizer=dict(type="Lamb", lr=1e-3, weight_decay=0.05),
                                  paramwise_cfg=dict(norm_decay_mult=0.0)),
               param_scheduler=dict(type="CosineAnnealingWeightDecay", eta_min=0.2,
                                    by_epoch=False, T_max=4),
               train_cfg=iters(4))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=4, modules=BN)
    assert run.weight_decay["backbone.bn1.weight"].tolist() == [0.0] * 4
    assert np.all(np.diff(run.weight_decay["head.fc.weight"]) > 0)
    assert run.momentum["head.fc.weight"].tolist() == pytest.approx([0.9] * 4)  # betas[0]


def test_a_short_run_follows_the_full_runs_schedule():
    values, grads = values_and_grads(20)
    cfg = dict(optim_wrapper=sgd(0.1, momentum=0.9),
               param_scheduler=dict(type="CosineAnnealingLR", by_epoch=True,
                                    convert_to_iter_based=True),
               train_cfg=epochs(5))
    full = run_mmengine(cfg, values, grads, steps_per_epoch=4)
    short = run_mmengine(cfg, values, grads[:6], steps_per_epoch=4)
    assert len(short.params) == 6
    np.testing.assert_array_equal(short.lr["head.fc.bias"], full.lr["head.fc.bias"][:6])
    np.testing.assert_array_equal(short.params[5]["head.fc.bias"], full.params[5]["head.fc.bias"])
    with pytest.raises(ValueError, match="21 gradients for a run of 20"):
        run_mmengine(cfg, values, grads + grads[:1], steps_per_epoch=4)


def test_auto_scale_lr_scales_by_the_given_batch_size():
    values, grads = values_and_grads(2)
    cfg = dict(optim_wrapper=sgd(0.1), train_cfg=epochs(1),
               auto_scale_lr=dict(base_batch_size=256, enable=True))
    with pytest.raises(ValueError, match="batch_size"):
        run_mmengine(cfg, values, grads, steps_per_epoch=2)
    run = run_mmengine(cfg, values, grads, steps_per_epoch=2, batch_size=64)
    assert run.lr["head.fc.bias"].tolist() == [0.025, 0.025]


def test_checkpoints_are_mmengine_checkpoints(tmp_path):
    values, grads = values_and_grads(6, np.float32)
    cfg = dict(optim_wrapper=dict(type="AmpOptimWrapper", **sgd(0.1, momentum=0.9)),
               param_scheduler=dict(type="StepLR", step_size=1, gamma=0.5),
               train_cfg=epochs(3))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=2, modules=BN,
                       checkpoint_iters=[2, 3], checkpoint_epochs=[1], checkpoint_dir=str(tmp_path))
    assert set(run.checkpoints) == {("iter", 2), ("iter", 3), ("epoch", 1)}
    at_iter = torch.load(run.checkpoints[("iter", 2)], weights_only=False)
    at_epoch = torch.load(run.checkpoints[("epoch", 1)], weights_only=False)
    assert {"meta", "state_dict", "optimizer", "param_schedulers", "message_hub"} <= set(at_iter)
    assert (at_iter["meta"]["epoch"], at_iter["meta"]["iter"]) == (0, 2)
    assert (at_epoch["meta"]["epoch"], at_epoch["meta"]["iter"]) == (1, 2)
    # the epoch checkpoint is written after the epoch scheduler stepped, the iteration one before
    assert at_iter["optimizer"]["param_groups"][0]["lr"] == 0.1
    assert at_epoch["optimizer"]["param_groups"][0]["lr"] == 0.05
    assert at_iter["optimizer"]["loss_scaler"]["scale"] == 65536.0
    np.testing.assert_array_equal(at_iter["state_dict"]["head.fc.weight"].numpy(),
                                  run.params[1]["head.fc.weight"])
    assert "backbone.bn1.running_mean" in at_iter["state_dict"]


def test_the_callers_global_random_state_is_left_alone():
    values, grads = values_and_grads(2)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = np.random.rand(), torch.rand(())
    np.random.seed(123)
    torch.manual_seed(123)
    run_mmengine(dict(optim_wrapper=sgd(), train_cfg=iters(2)), values, grads, steps_per_epoch=2)
    assert (np.random.rand(), torch.rand(())) == expected
