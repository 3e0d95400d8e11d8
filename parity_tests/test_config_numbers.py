"""Numbers, flags and iteration counts in a config: one-line ConfigErrors naming key and value.

Strings, None, NaN and bools are never read as numbers (``'0.5'`` is refused, not
read as 0.5; ``three_phase='False'`` is refused, not read as True). Iteration
counts must fit the compiled step's int32 counter. NumPy integers are ints.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optax_selfsup as oss

ITER = dict(runner_type="IterBasedRunner", max_iters=40)
RUN = dict(steps_per_epoch=10, max_epochs=4)
LIMIT = 2**31 - 1
PARAMS = {"backbone": {"weight": jnp.ones(2)}, "head": {"weight": jnp.ones(2)}}


def lr(cfg, run=ITER):
    return lambda: oss.lr_schedule(cfg, 0.1, **run)(3)


def momentum(cfg, run=ITER):
    return lambda: oss.momentum_schedule(cfg, 0.9, **run)(3)


def build(**cfg):
    def call():
        full = dict(optimizer=dict(type="SGD", lr=0.1),
                    runner=dict(type="IterBasedRunner", max_iters=40), **cfg)
        tx = oss.build_optimizer(full, PARAMS)
        state = tx.init(PARAMS)
        tx.update(jax.tree.map(jnp.ones_like, PARAMS), state, PARAMS)
    return call


RESTART = dict(policy="CosineRestart", periods=[40], min_lr=0.0)
CYCLIC = dict(policy="Cyclic")
ONECYCLE = dict(policy="OneCycle", max_lr=1.0)
STRING = "a string (write the number itself"

CASES = [
    # strings, None, NaN and bools inside list options
    ("restart_weights numeric string", lr(dict(RESTART, restart_weights=["0.5"])),
     ["lr_config.restart_weights=['0.5']", "[0]='0.5'", STRING]),
    ("restart_weights None", lr(dict(RESTART, restart_weights=[None])),
     ["lr_config.restart_weights=[None]", "[0]=None", "None"]),
    ("restart_weights bool", lr(dict(RESTART, restart_weights=[True])),
     ["lr_config.restart_weights=[True]", "a bool"]),
    ("restart_weights NaN", lr(dict(RESTART, restart_weights=[float("nan")])),
     ["lr_config.restart_weights=[nan]", "NaN"]),
    ("target_ratio numeric string", lr(dict(CYCLIC, target_ratio=["10", 1e-4])),
     ["lr_config.target_ratio=['10', 0.0001]", "[0]='10'", STRING]),
    ("target_ratio None", lr(dict(CYCLIC, target_ratio=[None])),
     ["lr_config.target_ratio=[None]", "None"]),
    ("target_ratio NaN", lr(dict(CYCLIC, target_ratio=float("nan"))),
     ["lr_config.target_ratio=nan", "NaN"]),
    ("target_ratio NaN in a tuple", lr(dict(CYCLIC, target_ratio=(10, float("nan")))),
     ["lr_config.target_ratio=(10, nan)", "[1]=nan", "NaN"]),
    ("target_ratio string", momentum(dict(CYCLIC, target_ratio="0.9")),
     ["momentum_config.target_ratio='0.9'", STRING]),
    ("periods numeric string", lr(dict(RESTART, periods=["40"])),
     ["lr_config.periods=['40']", "[0]='40'", STRING]),
    ("periods None", lr(dict(RESTART, periods=[20, None])),
     ["lr_config.periods=[20, None]", "[1]=None"]),
    ("step numeric string", lr(dict(policy="Step", step=["2"])),
     ["lr_config.step=['2']", "[0]='2'", STRING]),
    ("step None", lr(dict(policy="Step", step=[10, None])),
     ["lr_config.step=[10, None]", "[1]=None"]),
    ("step a numpy float", lr(dict(policy="Step", step=[np.float64(10.0)])),
     ["lr_config.step=", "[0]=", "a float64"]),
    ("max_lr numeric string", lr(dict(ONECYCLE, max_lr=["1.0"])),
     ["lr_config.max_lr=['1.0']", STRING]),
    # flags must be real bools
    ("three_phase string", lr(dict(ONECYCLE, three_phase="False")),
     ["lr_config.three_phase='False'", "True or False", "a string"]),
    ("three_phase int", lr(dict(ONECYCLE, three_phase=0)),
     ["lr_config.three_phase=0", "True or False"]),
    ("momentum three_phase string", momentum(dict(policy="OneCycle", three_phase="False")),
     ["momentum_config.three_phase='False'", "True or False"]),
    ("by_epoch string", lr(dict(policy="Step", step=2, by_epoch="False"), RUN),
     ["lr_config.by_epoch='False'", "True or False"]),
    # a bool is not a number
    ("grad_clip norm_type True", build(optimizer_config=dict(
        grad_clip=dict(max_norm=1.0, norm_type=True))),
     ["optimizer_config.grad_clip.norm_type=True", "a bool"]),
    ("grad_clip norm_type numeric string", build(optimizer_config=dict(
        grad_clip=dict(max_norm=1.0, norm_type="2"))),
     ["optimizer_config.grad_clip.norm_type='2'", "'inf'"]),
    # iteration counts the int32 step counter cannot hold
    ("warmup_iters past int32", lr(dict(policy="Fixed", warmup="linear", warmup_iters=2**31)),
     ["lr_config.warmup_iters=2147483648", "2147483647"]),
    ("warmup by epoch past int32", lr(dict(policy="Fixed", warmup="linear",
                                           warmup_iters=2**28, warmup_by_epoch=True), RUN),
     ["lr_config.warmup_iters=268435456", "2684354560", "2147483647"]),
    ("step past int32", lr(dict(policy="Step", step=2**31)),
     ["lr_config.step=2147483648", "2147483647"]),
    ("step list past int32", lr(dict(policy="Step", step=[10, 2**31])),
     ["lr_config.step=[10, 2147483648]", "2147483647"]),
    ("periods past int32", lr(dict(RESTART, periods=[2**30, 2**30], restart_weights=[1, 1])),
     ["lr_config.periods=[1073741824, 1073741824]", "2147483648", "2147483647"]),
    ("total_steps past int32", lr(dict(ONECYCLE, total_steps=2**32)),
     ["lr_config.total_steps=4294967296", "2147483647"]),
    ("max_iters past int32", lr(dict(policy="Poly", by_epoch=False),
                                dict(runner_type="IterBasedRunner", max_iters=2**31)),
     ["max_iters=2147483648", "2147483647"]),
    ("max_epochs * steps_per_epoch past int32", lr(dict(policy="Fixed"),
                                                   dict(steps_per_epoch=2**16, max_epochs=2**15)),
     ["runner.max_epochs * steps_per_epoch = 32768 * 65536 = 2147483648", "2147483647"]),
    ("frozen iteration past int32", build(optimizer_config=dict(
        frozen_layers_cfg={"backbone": 2**31})),
     ["optimizer_config.frozen_layers_cfg", "'backbone': 2147483648", "2147483647"]),
    ("frozen iteration numeric string", build(optimizer_config=dict(
        frozen_layers_cfg={"backbone": "100"})),
     ["optimizer_config.frozen_layers_cfg", "'backbone': '100'", STRING]),
    ("update_interval past int32", build(optimizer_config=dict(update_interval=2**31)),
     ["optimizer_config.update_interval=2147483648", "2147483647"]),
    # NumPy floats and bools where an int is expected
    ("steps_per_epoch a numpy float", lr(dict(policy="Fixed"),
                                         dict(steps_per_epoch=np.float64(4.0), max_epochs=2)),
     ["steps_per_epoch=np.float64(4.0)", "positive int", "a float64"]),
    ("steps_per_epoch a numpy bool", lr(dict(policy="Fixed"),
                                        dict(steps_per_epoch=np.True_, max_epochs=2)),
     ["steps_per_epoch=np.True_", "positive int", "a bool"]),
    ("max_epochs a float", lr(dict(policy="Fixed"), dict(steps_per_epoch=4, max_epochs=2.0)),
     ["max_epochs=2.0", "positive int", "a float"]),
    ("warmup_iters a numpy float", lr(dict(policy="Fixed", warmup="linear",
                                           warmup_iters=np.float32(3))),
     ["lr_config.warmup_iters=np.float32(3.0)", "an int", "a float32"]),
]


@pytest.mark.parametrize("call,fragments", [pytest.param(c, f, id=i) for i, c, f in CASES])
def test_bad_number_is_a_one_line_config_error(call, fragments):
    with pytest.raises(oss.ConfigError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_int32_limit_is_exactly_representable():
    # the largest count the clock holds is accepted (and evaluates without overflow)
    value = oss.lr_schedule(dict(policy="Step", step=LIMIT, by_epoch=False), 0.1,
                            runner_type="IterBasedRunner", max_iters=LIMIT)(LIMIT - 1)
    assert float(value) == pytest.approx(0.1)
    cfg = dict(policy="Fixed", warmup="linear", warmup_iters=LIMIT, warmup_ratio=0.5)
    assert float(oss.lr_schedule(cfg, 0.1, **ITER)(0)) == pytest.approx(0.05)


def test_three_phase_false_differs_from_true():
    its = jnp.arange(40)
    two = oss.lr_schedule(dict(ONECYCLE, three_phase=False), 0.1, **ITER)(its)
    three = oss.lr_schedule(dict(ONECYCLE, three_phase=np.bool_(True)), 0.1, **ITER)(its)
    assert not np.allclose(two, three)


NUMPY_INTS = [np.int64, np.int32, np.uint16]


@pytest.mark.parametrize("np_int", NUMPY_INTS, ids=lambda t: t.__name__)
def test_numpy_integers_are_ints_everywhere(np_int):
    cfg = dict(policy="Step", step=[np_int(1), np_int(3)], gamma=0.5,
               warmup="linear", warmup_iters=np_int(5))
    ours = oss.lr_schedule(cfg, 0.1, steps_per_epoch=np_int(4), max_epochs=np_int(5))
    plain = oss.lr_schedule(dict(cfg, step=[1, 3], warmup_iters=5), 0.1, steps_per_epoch=4,
                            max_epochs=5)
    its = jnp.arange(25)
    np.testing.assert_array_equal(ours(its), plain(its))
    assert ours(its).dtype == plain(its).dtype
    iters = oss.lr_schedule(dict(policy="Poly", by_epoch=False, warmup="exp",
                                 warmup_iters=np_int(3)), 0.1,
                            runner_type="IterBasedRunner", max_iters=np_int(20))
    np.testing.assert_array_equal(iters(its), oss.lr_schedule(
        dict(policy="Poly", by_epoch=False, warmup="exp", warmup_iters=3), 0.1,
        runner_type="IterBasedRunner", max_iters=20)(its))
    restart = dict(policy="CosineRestart", periods=[np_int(2), np_int(3)], min_lr=0.0,
                   restart_weights=[1, 0.5])
    oss.lr_schedule(restart, 0.1, steps_per_epoch=4, max_epochs=5)
    one = oss.lr_schedule(dict(ONECYCLE, total_steps=np_int(50)), 0.1, **ITER)
    assert np.isfinite(float(one(3)))


def test_numpy_integers_in_build_optimizer():
    cfg = dict(optimizer=dict(type="SGD", lr=0.1),
               optimizer_config=dict(update_interval=np.int64(2),
                                     frozen_layers_cfg={"backbone": np.int64(2)},
                                     grad_clip=dict(max_norm=np.float32(1.0),
                                                    norm_type=np.int64(2))),
               runner=dict(type="EpochBasedRunner", max_epochs=np.int64(2)))
    tx = oss.build_optimizer(cfg, PARAMS, steps_per_epoch=np.int64(4))
    state = tx.init(PARAMS)
    for _ in range(4):
        _, state = tx.update(jax.tree.map(jnp.ones_like, PARAMS), state, PARAMS)
