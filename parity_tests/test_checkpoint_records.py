"""A checkpoint of another optimizer is refused, never loaded into look-alike slots.

SGD and LARS with momentum keep the same ``momentum_buffer`` per parameter, so their
states have the same tree: orbax checkpoints record the optimizer (``config=``) and
torch states are told apart by their ``param_groups`` keys. Every pair of torch
optimizers is checked against every config type with real torch states (torch.optim
and torch_ref's LARS). A resume that changes ``update_interval`` inside an
accumulation group is refused; at a group boundary it is allowed.
"""

import shutil
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optax_selfsup as oss
import torch_ref
from optax_selfsup.checkpoint import (
    CheckpointMismatch,
    CheckpointWarning,
    TorchCheckpointError,
    from_torch_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from torch_ref.checkpoint import checkpoint_dict

SPE = 4
SHAPES = {"backbone.conv1.weight": (4, 3, 3, 3), "head.fc.weight": (2, 4), "head.fc.bias": (2,)}


def cfg(kind="SGD", update_interval=1, **optimizer):
    optimizer = dict(dict(type=kind, lr=0.1), **optimizer)
    return dict(optimizer=optimizer, optimizer_config=dict(update_interval=update_interval),
                lr_config=dict(policy="Fixed"), runner=dict(type="EpochBasedRunner",
                                                            max_epochs=4))


def params(seed=0):
    rng = np.random.default_rng(seed)
    return oss.nest_names({k: jnp.asarray(rng.normal(size=s).astype(np.float32))
                           for k, s in SHAPES.items()})


def run(config, iterations, p=None):
    """``iterations`` updates of ``config`` from ``params()``: (tx, params, state)."""
    p = params() if p is None else p
    tx = oss.build_optimizer(config, p, steps_per_epoch=SPE)
    state = tx.init(p)
    rng = np.random.default_rng(1)
    for _ in range(iterations):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), x.dtype), p)
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
    return tx, p, state


# ------------------------------------------------------------------------------ orbax


def test_an_sgd_checkpoint_is_refused_by_a_lars_config(tmp_path):
    sgd, lars = cfg("SGD", momentum=0.9), cfg("LARS", momentum=0.9)
    _, p, state = run(sgd, 3)
    save_checkpoint(tmp_path, 3, params=p, opt_state=state, config=sgd)
    tx = oss.build_optimizer(lars, p, steps_per_epoch=SPE)
    with pytest.raises(CheckpointMismatch, match=r"step 3 was written by optimizer.type='SGD'; "
                                                 r"this config has optimizer.type='LARS': its "
                                                 r"slots \(momentum_buffer\) would be read"):
        restore_checkpoint(tmp_path, params=p, opt_state=tx.init(p), config=lars)
    restored = restore_checkpoint(tmp_path, params=p, opt_state=state, config=sgd)
    assert restored.step == 3


def test_a_checkpoint_without_the_record_is_accepted_with_a_warning(tmp_path):
    sgd = cfg("SGD", momentum=0.9)
    _, p, state = run(sgd, 3)
    save_checkpoint(tmp_path, 3, params=p, opt_state=state)
    shutil.rmtree(tmp_path / "3" / "optimizer")  # as written before the record existed
    with pytest.warns(CheckpointWarning, match="has no optimizer record"):
        restored = restore_checkpoint(tmp_path, params=p, opt_state=state, config=sgd)
    for a, b in zip(jax.tree.leaves(restored.opt_state), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)


def test_restoring_without_config_warns_that_nothing_was_compared(tmp_path):
    sgd = cfg("SGD", momentum=0.9)
    _, p, state = run(sgd, 2)
    save_checkpoint(tmp_path, 2, params=p, opt_state=state, config=sgd)
    with pytest.warns(CheckpointWarning, match=r"without config= the optimizer of .* "
                                               r"\(optimizer.type='SGD', update_interval=1\)"):
        restore_checkpoint(tmp_path, params=p, opt_state=state)


def test_the_record_says_what_was_saved(tmp_path):
    import json

    byol = cfg("LARS", update_interval=4, momentum=0.9)
    _, p, state = run(byol, 6)
    save_checkpoint(tmp_path, 6, params=p, opt_state=state, config=byol)
    with open(tmp_path / "6" / "optimizer" / "optimizer.json") as f:
        assert json.load(f) == {"version": 1, "optimizer": "LARS", "update_interval": 4,
                                "slots": ["momentum_buffer"], "iteration": 6}


def test_another_update_interval_inside_a_group_is_refused(tmp_path):
    k4, k2 = cfg("SGD", 4, momentum=0.9), cfg("SGD", 2, momentum=0.9)
    _, p, state = run(k4, 6)  # 6 = one update + 2 micro-steps of the next group
    save_checkpoint(tmp_path, 6, params=p, opt_state=state, config=k4)
    template = oss.build_optimizer(k2, p, steps_per_epoch=SPE).init(p)
    with pytest.raises(CheckpointMismatch, match=r"saved at iteration 6, inside an accumulation "
                                                 r"group of optimizer_config.update_interval=4; "
                                                 r"this config has update_interval=2"):
        restore_checkpoint(tmp_path, params=p, opt_state=template, config=k2)


def test_another_update_interval_at_a_group_boundary_is_allowed(tmp_path):
    k4, k2 = cfg("SGD", 4, momentum=0.9), cfg("SGD", 2, momentum=0.9)
    _, p, state = run(k4, 8)
    save_checkpoint(tmp_path, 8, params=p, opt_state=state, config=k4)
    template = oss.build_optimizer(k2, p, steps_per_epoch=SPE).init(p)
    restored = restore_checkpoint(tmp_path, params=p, opt_state=template, config=k2)
    assert int(oss.iteration(restored.opt_state)) == 8


def test_training_resume_refuses_another_optimizer(tmp_path):
    from optax_selfsup.training.checkpoints import Checkpoints

    sgd, lars = cfg("SGD", momentum=0.9), cfg("LARS", momentum=0.9)
    _, p, state = run(sgd, 2)
    ckpt = Checkpoints(str(tmp_path))
    ckpt.save(2, {"params": p, "model_state": {}, "opt_state": state}, {"config": sgd})
    like = {"params": p, "model_state": {}, "opt_state": state}
    with pytest.raises(oss.ConfigError, match="cannot resume: .*optimizer.type='SGD'; this "
                                              "config has optimizer.type='LARS'"):
        ckpt.restore(2, like, {"config": lars})


# ------------------------------------------------------------------------------ torch

TORCH_TYPES = sorted(torch_ref.OPTIMIZERS)


def torch_checkpoint(kind, **optimizer):
    """The mmcv checkpoint of a real torch optimizer of type ``kind`` after 2 steps."""
    rng = np.random.default_rng(0)
    named = [(n, torch.nn.Parameter(torch.tensor(rng.normal(size=s).astype(np.float32))))
             for n, s in SHAPES.items()]
    runner = torch_ref.Runner(torch_ref.build(cfg(kind, **optimizer), named,
                                              steps_per_epoch=SPE))
    runner.train(lambda it: {n: torch.ones(s) for n, s in SHAPES.items()}, num_iters=2)
    return checkpoint_dict(runner, named)


def _template():
    return oss.nest_names({k: jnp.zeros(s) for k, s in SHAPES.items()})


@pytest.mark.parametrize("kind", TORCH_TYPES)
def test_a_torch_state_loads_only_into_its_own_optimizer(kind):
    """A real torch state of each optimizer against a config of every type: only its own
    is accepted (Adam / AdamW by torch's decoupled_weight_decay, Adamax / RAdam by
    their slots)."""
    ckpt = torch_checkpoint(kind)
    accepted = []
    for other in TORCH_TYPES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                from_torch_checkpoint(ckpt, cfg(other), _template(), steps_per_epoch=SPE)
            except TorchCheckpointError:
                continue
        accepted.append(other)
    assert accepted == [kind]


def test_an_sgd_state_is_refused_by_a_lars_config_naming_both():
    with pytest.raises(TorchCheckpointError, match=r"the torch optimizer is SGD \(its "
                                                   r"param_groups lack eta, which LARS has\); "
                                                   r"this config has "
                                                   r"optimizer.type='LARS'"):
        from_torch_checkpoint(torch_checkpoint("SGD"), cfg("LARS", momentum=0.9), _template(),
                              steps_per_epoch=SPE)
    with pytest.raises(TorchCheckpointError, match=r"the torch optimizer is LARS \(its "
                                                   r"param_groups have eta, which SGD has "
                                                   r"not\); this config has "
                                                   r"optimizer.type='SGD'"):
        from_torch_checkpoint(torch_checkpoint("LARS"), cfg("SGD", momentum=0.9), _template(),
                              steps_per_epoch=SPE)


def test_adam_and_adamw_are_told_apart_by_decoupled_weight_decay():
    ckpt = torch_checkpoint("Adam", weight_decay=0.01)  # AdamW's default: same keys, values
    assert ckpt["optimizer"]["param_groups"][0]["decoupled_weight_decay"] is False
    with pytest.raises(TorchCheckpointError, match="decoupled_weight_decay=False, this config "
                                                   "gives decoupled_weight_decay=True"):
        from_torch_checkpoint(ckpt, cfg("AdamW"), _template(), steps_per_epoch=SPE)
    from_torch_checkpoint(ckpt, cfg("Adam", weight_decay=0.01), _template(),
                          steps_per_epoch=SPE)


@pytest.mark.parametrize("value", [-3, 2.5, "12", True, None])
def test_a_bad_meta_iter_is_refused(value):
    ckpt = torch_checkpoint("SGD")
    ckpt["meta"]["iter"] = value
    with pytest.raises(TorchCheckpointError, match=r"meta\['iter'\]=.* is not an iteration: it "
                                                   r"must be an int >= 0"):
        from_torch_checkpoint(ckpt, cfg("SGD"), _template(), steps_per_epoch=SPE)


def test_an_integral_meta_iter_of_another_type_is_read():
    ckpt = torch_checkpoint("SGD")
    ckpt["meta"]["iter"] = torch.tensor(2)
    assert from_torch_checkpoint(ckpt, cfg("SGD"), _template(),
                                 steps_per_epoch=SPE).iteration == 2


def test_the_matrix_covers_every_built_in_optimizer():
    assert set(TORCH_TYPES) >= {"ASGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "LARS",
                                "NAdam", "RAdam", "RMSprop", "Rprop", "SGD"}


def mmengine_cfg(kind="SGD", accumulative_counts=1, **optimizer):
    """An MMEngine config (MMSelfSup 1.x / MMPretrain) without a top-level ``optimizer``."""
    optimizer = dict(dict(type=kind, lr=0.1), **optimizer)
    return dict(default_scope="mmpretrain",
                optim_wrapper=dict(type="OptimWrapper", optimizer=optimizer,
                                   accumulative_counts=accumulative_counts),
                param_scheduler=dict(type="ConstantLR", factor=1.0),
                train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=4))


def test_an_mmengine_config_records_its_optimizer_and_accumulative_counts(tmp_path):
    """optim_wrapper.optimizer.type and accumulative_counts play the 0.x keys' part (the
    train command saved MMEngine runs with config= and failed without this)."""
    import json

    k4 = mmengine_cfg("LARS", 4, momentum=0.9)
    _, p, state = run(k4, 6)
    save_checkpoint(tmp_path, 6, params=p, opt_state=state, config=k4)
    with open(tmp_path / "6" / "optimizer" / "optimizer.json") as f:
        assert json.load(f) == {"version": 1, "optimizer": "LARS", "update_interval": 4,
                                "slots": ["momentum_buffer"], "iteration": 6}
    k2 = mmengine_cfg("LARS", 2, momentum=0.9)
    template = oss.build_optimizer(k2, p, steps_per_epoch=SPE).init(p)
    with pytest.raises(CheckpointMismatch, match=r"inside an accumulation group of "
                                                 r"optim_wrapper.accumulative_counts=4; "
                                                 r"this config has accumulative_counts=2"):
        restore_checkpoint(tmp_path, params=p, opt_state=template, config=k2)
    sgd = mmengine_cfg("SGD", 4, momentum=0.9)
    template = oss.build_optimizer(sgd, p, steps_per_epoch=SPE).init(p)
    with pytest.raises(CheckpointMismatch, match="optimizer.type='LARS'; this config has "
                                                 "optimizer.type='SGD'"):
        restore_checkpoint(tmp_path, params=p, opt_state=template, config=sgd)
