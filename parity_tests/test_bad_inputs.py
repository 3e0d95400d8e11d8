"""Every bad input is a clear ConfigError naming the key, the value and the valid choices.

One table (``CASES``): each row calls the library with one bad input and lists the
fragments the message must contain (the key, the value as written, and the valid
range or choices). Below it: warnings for what upstream silently ignores, and
good inputs that must keep passing (schedules, JAX arrays, tracers, JSON lists).
"""

import json
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_selfsup as oss
from optax_selfsup.validation import check_params

from recipe_harness import gradients, initial_values, param_error, run_jax, run_torch

RUNNER = dict(type="EpochBasedRunner", max_epochs=2)
PARAMS = {"backbone": {"conv1": {"weight": jnp.ones((2, 2)), "bias": jnp.zeros(2)},
                       "bn1": {"weight": jnp.ones(2), "bias": jnp.zeros(2)}},
          "head": {"fc": {"weight": jnp.ones((2, 2))}}}


def build(optimizer=None, params=None, **cfg):
    """Build, init and take one step (so an input refused only later still counts)."""
    cfg = dict(optimizer=optimizer or dict(type="SGD", lr=0.1), runner=RUNNER, **cfg)
    params = PARAMS if params is None else params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=2)
    state = tx.init(params)
    tx.update(jax.tree.map(jnp.ones_like, params), state, params)


def opt(type_, **kwargs):
    return lambda tmp: build(dict(type=type_, **kwargs))


def sgd_rule(**options):
    return lambda tmp: build(dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4,
                                  paramwise_options={"bias": options}))


def hooks(**cfg):
    return lambda tmp: build(None, None, **cfg)


def direct(factory, params=None, **kwargs):
    def call(tmp):
        tx = factory(**kwargs)
        p = params or {"a": jnp.ones(2), "b": jnp.ones(2)}
        tx.update(jax.tree.map(jnp.ones_like, p), tx.init(p), p)
    return call


def options(*items):
    return lambda tmp: oss.merge_options({}, list(items))


def files(main, **texts):
    """Write the files (name -> text) into tmp and load ``main``."""
    def call(tmp):
        for name, text in texts.items():
            (tmp / name).write_text(text)
        oss.load_config(tmp / main)
    return call


BASE = "optimizer = dict(type='SGD', lr=0.1)\n"
FINETUNE = dict(type="AdamW", lr=1e-3, constructor="TransformerFinetuneConstructor",
                model_type="vit")

CASES = [
    # values torch refuses (today: trained with)
    ("negative lr", opt("SGD", lr=-0.1), ["optimizer.lr=-0.1", ">= 0"]),
    ("negative weight_decay", opt("SGD", lr=0.1, weight_decay=-1e-4),
     ["optimizer.weight_decay=-0.0001", ">= 0"]),
    ("negative momentum", opt("SGD", lr=0.1, momentum=-0.9), ["optimizer.momentum=-0.9", ">= 0"]),
    ("negative eps", opt("Adam", eps=-1e-8), ["optimizer.eps=-1e-08", ">= 0"]),
    ("beta1 = 1", opt("Adam", betas=(1.0, 0.999)),
     ["optimizer.betas=(1.0, 0.999)", "betas[0]=1.0", "in [0, 1)"]),
    ("beta2 negative", opt("Adam", betas=(0.9, -0.1)), ["betas[1]=-0.1", "in [0, 1)"]),
    ("AdamW beta2 = 1", opt("AdamW", betas=(0.9, 1.0)), ["betas[1]=1.0", "in [0, 1)"]),
    ("Adamax beta2 > 1", opt("Adamax", betas=(0.9, 1.5)), ["betas[1]=1.5", "in [0, 1)"]),
    ("three betas", opt("Adam", betas=(0.9, 0.99, 0.5)),
     ["optimizer.betas=(0.9, 0.99, 0.5)", "2 numbers", "3 value"]),
    ("one beta", opt("Adam", betas=(0.9,)), ["optimizer.betas=(0.9,)", "2 numbers", "1 value"]),
    ("betas as a string", opt("Adam", betas="0.9,0.999"),
     ["optimizer.betas='0.9,0.999'", "2 numbers", "string"]),
    ("lr as a string", opt("SGD", lr="0.1"), ["optimizer.lr='0.1'", "must be a number >= 0",
                                             "string"]),
    ("lr None", opt("SGD", lr=None), ["optimizer.lr=None", "must be a number >= 0"]),
    ("lr a list", opt("SGD", lr=[0.1]), ["optimizer.lr=[0.1]", "must be a number", "list"]),
    ("lr NaN", opt("SGD", lr=float("nan")), ["optimizer.lr=nan", "NaN", ">= 0"]),
    ("lr a bool", opt("SGD", lr=True), ["optimizer.lr=True", "must be a number", "bool"]),
    ("lr a negative numpy scalar", opt("SGD", lr=np.float32(-0.1)), ["optimizer.lr=", "-0.1",
                                                                     ">= 0"]),
    ("weight_decay as a string", opt("SGD", lr=0.1, weight_decay="1e-4"),
     ["optimizer.weight_decay='1e-4'", "must be a number >= 0"]),
    ("momentum as a string", opt("SGD", lr=0.1, momentum="0.9"),
     ["optimizer.momentum='0.9'", "must be a number"]),
    ("dampening as a string", opt("SGD", lr=0.1, dampening="0"),
     ["optimizer.dampening='0'", "must be a number"]),
    ("nesterov as a string", opt("SGD", lr=0.1, momentum=0.9, nesterov="yes"),
     ["optimizer.nesterov='yes'", "True or False"]),
    ("amsgrad as a string", opt("Adam", amsgrad="False"),
     ["optimizer.amsgrad='False'", "True or False"]),
    ("LARS negative lr", opt("LARS", lr=-1.0), ["optimizer.lr=-1.0", ">= 0"]),
    ("LARS negative eta", opt("LARS", lr=0.1, eta=-0.001), ["optimizer.eta=-0.001", ">= 0"]),
    ("LARS negative weight_decay", opt("LARS", lr=0.1, weight_decay=-1.0),
     ["optimizer.weight_decay=-1.0", ">= 0"]),
    ("RMSprop negative alpha", opt("RMSprop", alpha=-0.5), ["optimizer.alpha=-0.5", ">= 0"]),
    ("RMSprop negative eps", opt("RMSprop", eps=-1.0), ["optimizer.eps=-1.0", ">= 0"]),
    ("RMSprop negative momentum", opt("RMSprop", momentum=-0.1),
     ["optimizer.momentum=-0.1", ">= 0"]),
    ("Adagrad negative lr_decay", opt("Adagrad", lr_decay=-0.1),
     ["optimizer.lr_decay=-0.1", ">= 0"]),
    ("Adagrad negative accumulator", opt("Adagrad", initial_accumulator_value=-1.0),
     ["optimizer.initial_accumulator_value=-1.0", ">= 0"]),
    ("Adadelta rho > 1", opt("Adadelta", rho=1.5), ["optimizer.rho=1.5", "in [0, 1]"]),
    ("Rprop etas[0] > 1", opt("Rprop", etas=(1.5, 1.2)), ["etas[0]=1.5", "in (0, 1)"]),
    ("Rprop etas[1] < 1", opt("Rprop", etas=(0.5, 0.9)), ["etas[1]=0.9", "> 1"]),
    ("ASGD negative weight_decay", opt("ASGD", weight_decay=-1.0),
     ["optimizer.weight_decay=-1.0", ">= 0"]),
    ("NAdam negative momentum_decay", opt("NAdam", momentum_decay=-0.004),
     ["optimizer.momentum_decay=-0.004", ">= 0"]),
    ("RAdam negative eps", opt("RAdam", eps=-1.0), ["optimizer.eps=-1.0", ">= 0"]),
    ("layer_decay as a string", lambda tmp: build(dict(FINETUNE, layer_decay="0.65")),
     ["optimizer.layer_decay='0.65'", "must be a number >= 0"]),
    # per-parameter values set by paramwise rules: the rule, the parameter and the value
    ("rule: negative weight_decay", sgd_rule(weight_decay=-1),
     ["paramwise_options['bias']", "backbone.bn1.bias", "weight_decay=-1", ">= 0"]),
    ("rule: lr_mult a string", sgd_rule(lr_mult="2"),
     ["paramwise_options['bias'].lr_mult='2'", "must be a number"]),
    ("rule: negative lr_mult", sgd_rule(lr_mult=-2),
     ["paramwise_options['bias'].lr_mult=-2", "backbone.bn1.bias", "lr=-0.2", ">= 0"]),
    ("rule: weight_decay_mult None", sgd_rule(weight_decay_mult=None),
     ["paramwise_options['bias'].weight_decay_mult=None", "must be a number"]),
    ("rule: lr as a string", sgd_rule(lr="0.1"),
     ["paramwise_options['bias']", "backbone.bn1.bias", "lr='0.1'", "must be a number"]),
    ("rule: lr None", sgd_rule(lr=None), ["backbone.bn1.bias", "lr=None", ">= 0"]),
    ("rule: negative momentum", sgd_rule(momentum=-0.5),
     ["backbone.bn1.bias", "momentum=-0.5", ">= 0"]),
    ("rule: fix_lr a string", sgd_rule(fix_lr="yes"),
     ["backbone.bn1.bias", "fix_lr='yes'", "True or False"]),
    ("rule: betas outside [0, 1)", lambda tmp: build(dict(
        type="Adam", paramwise_options={"head": dict(betas=(0.9, 1.2))})),
     ["paramwise_options['head']", "head.fc.weight", "betas[1]=1.2", "in [0, 1)"]),
    ("rule: betas_mult", lambda tmp: build(dict(
        type="Adam", betas=(0.9, 0.999), paramwise_options={"head": dict(betas_mult=2)})),
     ["paramwise_options['head'].betas_mult=2", "optimizer.betas=(0.9, 0.999)",
      "not a number"]),
    ("rule: lars_exclude a string", lambda tmp: build(dict(
        type="LARS", lr=0.1, paramwise_options={"bn": dict(lars_exclude="True")})),
     ["backbone.bn1.bias", "lars_exclude='True'", "True or False"]),
    ("rule: not a dict, matching", lambda tmp: build(dict(
        type="SGD", lr=0.1, paramwise_options={"bn1": 0.0})),
     ["paramwise_options['bn1']=0.0", "not a dict", "'backbone.bn1.bias'", "paramwise_cfg"]),
    ("paramwise_options a list", lambda tmp: build(dict(
        type="SGD", lr=0.1, paramwise_options=["bias"])),
     ["optimizer.paramwise_options", "dict from regex", "list"]),
    # optimizer_config, fp16 and custom hooks
    ("max_norm NaN", hooks(optimizer_config=dict(grad_clip=dict(max_norm=float("nan")))),
     ["optimizer_config.grad_clip.max_norm=nan", "> 0"]),
    ("max_norm 0", hooks(optimizer_config=dict(grad_clip=dict(max_norm=0))),
     ["optimizer_config.grad_clip.max_norm=0", "> 0"]),
    ("max_norm a string", hooks(optimizer_config=dict(grad_clip=dict(max_norm="1.0"))),
     ["optimizer_config.grad_clip.max_norm='1.0'", "must be a number"]),
    ("norm_type NaN", hooks(optimizer_config=dict(grad_clip=dict(max_norm=1, norm_type=np.nan))),
     ["optimizer_config.grad_clip.norm_type=nan", "> 0 or inf"]),
    ("backoff_factor 1", hooks(fp16=dict(loss_scale=dict(backoff_factor=1.0))),
     ["fp16.loss_scale.backoff_factor=1.0", "< 1"]),
    ("backoff_factor > 1", hooks(fp16=dict(loss_scale=dict(backoff_factor=1.5))),
     ["fp16.loss_scale.backoff_factor=1.5", "< 1"]),
    ("growth_factor 1", hooks(fp16=dict(loss_scale=dict(growth_factor=1.0))),
     ["fp16.loss_scale.growth_factor=1.0", "> 1"]),
    ("growth_factor < 1", hooks(fp16=dict(loss_scale=dict(growth_factor=0.5))),
     ["fp16.loss_scale.growth_factor=0.5", "> 1"]),
    ("growth_factor a string", hooks(fp16=dict(loss_scale=dict(growth_factor="2"))),
     ["fp16.loss_scale.growth_factor='2'", "must be a number"]),
    ("growth_interval 0", hooks(fp16=dict(loss_scale=dict(growth_interval=0))),
     ["fp16.loss_scale.growth_interval=0", ">= 1"]),
    ("init_scale negative", hooks(fp16=dict(loss_scale=dict(init_scale=-1.0))),
     ["fp16.loss_scale.init_scale=-1.0", "> 0"]),
    ("static loss_scale inf", hooks(fp16=dict(loss_scale=float("inf"))),
     ["fp16.loss_scale=inf", "finite number > 0"]),
    ("static loss_scale NaN", hooks(fp16=dict(loss_scale=float("nan"))),
     ["fp16.loss_scale=nan", "> 0"]),
    ("hook loss_scale growth_factor", hooks(optimizer_config=dict(
        type="GradAccumFp16OptimizerHook", loss_scale=dict(growth_factor=1.0))),
     ["optimizer_config.loss_scale.growth_factor=1.0", "> 1"]),
    ("update_interval a float", hooks(optimizer_config=dict(update_interval=2.5)),
     ["optimizer_config.update_interval=2.5", "must be an int"]),
    ("SimSiamHook negative lr", hooks(custom_hooks=[dict(type="SimSiamHook", fix_pred_lr=True,
                                                         lr=-1)]),
     ["custom_hooks[0].lr=-1", ">= 0"]),
    # upstream reads these by truth value: the string 'False' would act as True
    ("SimSiamHook adjust_by_epoch a string", hooks(custom_hooks=[dict(
        type="SimSiamHook", fix_pred_lr=True, lr=0.05, adjust_by_epoch="False")]),
     ["custom_hooks[0].adjust_by_epoch='False'", "True, False or None"]),
    ("SimSiamHook fix_pred_lr a string", hooks(custom_hooks=[dict(
        type="SimSiamHook", fix_pred_lr="False", lr=0.05)]),
     ["custom_hooks[0].fix_pred_lr='False'", "True or False"]),
    # one param group per parameter (MMSelfSup 0.x), also without paramwise_options
    ("max_lr list too short", hooks(lr_config=dict(policy="OneCycle", max_lr=[0.1, 0.2])),
     ["lr_config.max_lr has 2 values", "5 parameters", "one param group per parameter"]),
    ("max_momentum list too long", lambda tmp: build(
        dict(type="SGD", lr=0.1, momentum=0.9),
        momentum_config=dict(policy="OneCycle", max_momentum=[0.95] * 6)),
     ["momentum_config.max_momentum has 6 values", "5 parameters"]),
    # arguments read once for all groups upstream: a rule setting one is refused
    ("LARS eps from a rule", lambda tmp: build(dict(type="LARS", lr=0.1, paramwise_options={
        "bias": dict(eps=1e-3)})),
     ["optimizer.paramwise_options['bias'] sets eps=0.001", "backbone.bn1.bias",
      "LARS reads one eps for all param groups", "optimizer.eps=1e-08"]),
    ("LARS eps_mult from a rule", lambda tmp: build(dict(
        type="LARS", lr=0.1, eps=1e-6, paramwise_options={"bn": dict(eps_mult=10.0)})),
     ["paramwise_options['bn'] sets eps_mult=", "one eps for all param groups"]),
    ("Adagrad initial_accumulator_value from a rule", lambda tmp: build(dict(
        type="Adagrad", paramwise_options={"head": dict(initial_accumulator_value=0.1)})),
     ["paramwise_options['head'] sets initial_accumulator_value=0.1", "head.fc.weight",
      "one initial_accumulator_value for all param groups"]),
    # a rule leaving a group invalid names the rule, the parameter and the values
    ("nesterov rule without momentum", lambda tmp: build(dict(
        type="SGD", lr=0.1, paramwise_options={"bias": dict(nesterov=True)})),
     ["param group of backbone.bn1.bias", "'bias' sets nesterov=True",
      "momentum=0.0, dampening=0.0", "momentum > 0 and dampening = 0"]),
    ("nesterov rule with dampening", sgd_rule(nesterov=True, dampening=0.1),
     ["param group of backbone.bn1.bias", "'bias' sets nesterov=True, dampening=0.1",
      "momentum=0.9, dampening=0.1"]),
    ("LARS rule zeroing the momentum of nesterov", lambda tmp: build(dict(
        type="LARS", lr=0.1, momentum=0.9, nesterov=True,
        paramwise_options={"head": dict(momentum_mult=0.0)})),
     ["param group of head.fc.weight", "'head' sets momentum_mult=0.0",
      "(got momentum=0.0, dampening=0.0)"]),
    # custom_hooks: MMSelfSup's train entry point asserts a list of dicts
    ("custom_hooks a dict", hooks(custom_hooks=dict(type="SimSiamHook", fix_pred_lr=True,
                                                    lr=0.05)),
     ["custom_hooks must be a list", "got dict", "[dict(type='SimSiamHook'"]),
    ("custom_hooks a string", hooks(custom_hooks="SimSiamHook"),
     ["custom_hooks must be a list", "got str: 'SimSiamHook'"]),
    ("custom_hooks a tuple", hooks(custom_hooks=(dict(type="SimSiamHook"),)),
     ["custom_hooks must be a list", "got tuple"]),
    ("custom_hooks item a string", hooks(custom_hooks=["SimSiamHook"]),
     ["custom_hooks[0] must be a dict", "'SimSiamHook'"]),
    ("custom_hooks item without type", hooks(custom_hooks=[dict(fix_pred_lr=True, lr=0.1)]),
     ["custom_hooks[0] must be a dict with a 'type'", "(no 'type')"]),
    # the params tree
    ("int32 params", lambda tmp: build(params={"w": jnp.ones(2), "step": jnp.zeros(2, jnp.int32)}),
     ["params", "'step'", "int32", "floating-point"]),
    ("bool params", lambda tmp: check_params({"mask": np.ones(2, bool)}),
     ["'mask'", "bool", "floating-point"]),
    ("complex params", lambda tmp: check_params({"z": jnp.ones(2, jnp.complex64)}),
     ["'z'", "complex64", "floating-point"]),
    ("empty params", lambda tmp: build(params={}),
     ["params has no leaves", "optimizer got an empty parameter list"]),
    ("empty params, named", lambda tmp: check_params({"a": {}}, where="model params"),
     ["model params has no leaves"]),
    ("Linen variables", lambda tmp: build(params={"params": PARAMS,
                                                  "batch_stats": {"mean": jnp.zeros(2)}}),
     ["'batch_stats'", "variables['params']"]),
    # the factories (keyword arguments, once or per leaf)
    ("sgd(lr=-0.1)", direct(oss.sgd, lr=-0.1), ["SGD: lr=-0.1", ">= 0"]),
    ("sgd(lr='0.1')", direct(oss.sgd, lr="0.1"), ["SGD: lr='0.1'", "must be a number"]),
    ("adam(betas=(0.9, 1.0))", direct(oss.adam, betas=(0.9, 1.0)),
     ["Adam: betas=(0.9, 1.0)", "betas[1]=1.0", "in [0, 1)"]),
    ("adamw(weight_decay=-0.01)", direct(oss.adamw, weight_decay=-0.01),
     ["AdamW: weight_decay=-0.01", ">= 0"]),
    ("per-leaf lr", direct(oss.sgd, lr={"a": -0.1, "b": 0.1}), ["SGD: lr[a]=-0.1", ">= 0"]),
    ("per-leaf betas", direct(oss.adam, betas={"a": (0.9, 0.99), "b": (0.9, 1.5)}),
     ["Adam: betas[b]=(0.9, 1.5)", "betas[1]=1.5"]),
    ("per-leaf betas, tuple-rooted", direct(oss.adam, params=(jnp.ones(2), jnp.ones(2)),
                                            betas=((0.9, 0.99), (0.9, 1.5))),
     ["Adam: betas[1]=(0.9, 1.5)", "betas[1]=1.5", "in [0, 1)"]),
    ("torch_optimizer eps None", direct(lambda **kw: oss.torch_optimizer("Adam", **kw),
                                        eps=None), ["Adam: eps=None", "must be a number >= 0"]),
    # --cfg-options
    ("unclosed list", options("a=[1,2"), ["'a=[1,2'", "imbalanced brackets", "']' missing"]),
    ("unclosed tuple", options("b=(0.9,0.99"), ["'b=(0.9,0.99'", "imbalanced brackets"]),
    ("extra bracket", options("a=[1,2]]"), ["'a=[1,2]]'", "imbalanced brackets"]),
    ("crossed brackets", options("a=(1,2]"), ["'a=(1,2]'", "imbalanced brackets"]),
    ("empty key", options("=0.1"), ["'=0.1'", "no key before '='"]),
    ("empty value", options("optimizer.lr="), ["'optimizer.lr='", "no value after '='"]),
    ("empty key part", options("optimizer..lr=0.1"), ["'optimizer..lr=0.1'", "empty part"]),
    ("no '='", options("optimizer.lr"), ["'optimizer.lr'", "KEY=VALUE"]),
    ("a value and a prefix", options("a=1", "a.b=2"), ["'a.b=2'", "'a'"]),
    ("lr a word", lambda tmp: build(oss.merge_options(
        dict(optimizer=dict(type="SGD", lr=0.1)), ["optimizer.lr=abc"])["optimizer"]),
     ["optimizer.lr='abc'", "must be a number"]),
    # config files
    ("missing base key", files("c.py", **{"b.py": BASE, "c.py": "_base_ = './b.py'\n"
                                          "lr = {{_base_.missing}}\n"}),
     ["c.py", "{{_base_.missing}}", "no key 'missing'"]),
    ("missing base key in a string", files("c.py", **{
        "b.py": BASE, "c.py": "_base_ = './b.py'\nname = 'x_{{_base_.missing}}'\n"}),
     ["c.py", "{{_base_.missing}}", "no key 'missing'"]),
    ("base key in a string", files("c.py", **{
        "b.py": BASE, "c.py": "_base_ = './b.py'\nname = 'x_{{_base_.optimizer}}'\n"}),
     ["c.py", "{{_base_.optimizer}}", "'x_{{_base_.optimizer}}'", "whole value"]),
    ("base key quoted in JSON", files("c.json", **{
        "b.py": BASE, "c.json": '{"_base_": "./b.py", "lr": "{{_base_.optimizer.lr}}"}'}),
     ["c.json", "invalid JSON", "without quotes"]),
    ("placeholder without _base_", files("c.py", **{"c.py": "lr = {{_base_.lr}}\n"}),
     ["c.py", "{{_base_.lr}}", "no _base_"]),
]


@pytest.mark.parametrize("call,fragments", [pytest.param(c, f, id=i) for i, c, f in CASES])
def test_bad_input_is_a_clear_error(call, fragments, tmp_path):
    with pytest.raises(oss.ConfigError) as err:
        call(tmp_path)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_the_table_is_large():
    assert len(CASES) >= 60
    assert len({i for i, _, _ in CASES}) == len(CASES)


# ---- what upstream silently ignores: warned, and trained as upstream --------------------

SMALL_RUN = dict(runner=dict(type="EpochBasedRunner", max_epochs=2),
                 lr_config=dict(policy="CosineAnnealing", min_lr=0.0, by_epoch=False))


def test_a_non_dict_option_matching_nothing_warns_and_trains_as_upstream():
    """mmcv's ``paramwise_cfg=dict(norm_decay_mult=0.)`` written as paramwise_options:
    upstream reads 'norm_decay_mult' as a regex that matches nothing."""
    rules = {"norm_decay_mult": 0.0, "bias": dict(weight_decay=0.0)}
    cfg = dict(SMALL_RUN, optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-2,
                                         paramwise_options=rules))
    values, grads = initial_values(), gradients(6)
    with pytest.warns(UserWarning) as record:
        ours, *_ = run_jax(cfg, values, grads, 3)
    text = " ".join(str(w.message) for w in record)
    assert "paramwise_options['norm_decay_mult']=0.0" in text
    assert "paramwise_cfg options" in text and "not regexes here" in text
    ref, *_ = run_torch(cfg, values, grads, 3)  # torch_ref: upstream's constructor
    assert param_error(ours[-1], ref[-1]) <= 1e-6
    without = dict(cfg, optimizer=dict(cfg["optimizer"], paramwise_options={
        "bias": dict(weight_decay=0.0)}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain, *_ = run_jax(without, values, grads, 3)
    assert param_error(ours[-1], plain[-1]) == 0.0


def test_a_frozen_layers_key_matching_nothing_warns_and_trains_as_upstream():
    cfg = dict(SMALL_RUN, optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
               optimizer_config=dict(frozen_layers_cfg={"prototypes": 4, "protoypes": 6}))
    values, grads = initial_values(), gradients(6)
    with pytest.warns(UserWarning, match="frozen_layers_cfg") as record:
        ours, *_ = run_jax(cfg, values, grads, 3)
    text = " ".join(str(w.message) for w in record if "frozen_layers_cfg" in str(w.message))
    assert "'protoypes'" in text and "freeze nothing" in text
    assert "did you mean 'prototypes.weight'" in text
    assert "'prototypes'," not in text  # the key that matches is not reported
    ref, *_ = run_torch(cfg, values, grads, 3)
    assert param_error(ours[-1], ref[-1]) <= 1e-6


def test_a_misspelt_option_warns_with_the_closest_valid_key():
    cfg = dict(optimizer=dict(type="SGD", lr=0.1, paramwise_options={
        "bias": dict(weight_decy=0.0)}), runner=RUNNER)
    with pytest.warns(UserWarning, match="did you mean 'weight_decay'") as record:
        rows = oss.describe(cfg, PARAMS)
    message = str(record[0].message)
    assert "paramwise_options['bias'] sets 'weight_decy'" in message
    assert "has no effect" in message and "'lr_mult'" in message  # the valid options
    assert all(r["weight_decay"] == 0.0 for r in rows)  # the optimizer's: nothing changed


def test_an_option_the_optimizer_does_not_take_warns():
    cfg = dict(optimizer=dict(type="Adam", paramwise_options={"bias": dict(momentum=0.5)}),
               runner=RUNNER)
    with pytest.warns(UserWarning, match="sets 'momentum', which Adam does not take"):
        oss.describe(cfg, PARAMS)


# ---- good inputs keep passing ------------------------------------------------------------


def _step(tx, params):
    state = tx.init(params)
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    return optax.apply_updates(params, updates)


def test_schedules_arrays_and_tracers_are_not_refused():
    params = {"a": jnp.ones(2), "b": jnp.ones(2)}
    out = _step(oss.sgd(lr=optax.constant_schedule(0.5)), params)
    np.testing.assert_allclose(out["a"], 0.5)
    out = _step(oss.sgd(lr=jnp.asarray(0.25), momentum=jnp.asarray(0.9)), params)
    np.testing.assert_allclose(out["a"], 0.75)
    tx = optax.inject_hyperparams(oss.sgd)(lr=0.5)  # traced hyperparameters
    out = _step(tx, params)
    np.testing.assert_allclose(out["a"], 0.5)
    out = _step(oss.adam(lr={"a": 0.1, "b": 0.0}, betas=(optax.constant_schedule(0.9), 0.999)),
                params)
    np.testing.assert_allclose(out["a"], 0.9, rtol=1e-6)
    np.testing.assert_allclose(out["b"], 1.0)
    out = _step(oss.sgd(lr=np.float32(0.5)), params)  # a numpy scalar in range
    np.testing.assert_allclose(out["a"], 0.5)


def test_json_lists_cfg_options_and_half_precision_params_pass(tmp_path):
    path = tmp_path / "adam.json"
    path.write_text(json.dumps(dict(optimizer=dict(type="Adam", lr=0.1, betas=[0.5, 0.9]),
                                    runner=RUNNER)))
    cfg = oss.merge_options(oss.load_config(path), ["optimizer.eps=1e-4"])
    rows = oss.describe(cfg, {"w": jnp.ones(2)})
    assert rows[0]["momentum"] == 0.5
    build(cfg["optimizer"])
    cfg = oss.merge_options({}, ["a=[(1,2),[3,(4,5)]]", "b=(0.9,0.99)", "c=''", "d=1,2"])
    assert cfg == dict(a=[(1, 2), [3, (4, 5)]], b=(0.9, 0.99), c="", d=[1, 2])
    for dtype in (np.float16, jnp.bfloat16, np.float64):
        check_params({"w": np.ones(2, dtype)})
    check_params({"params": PARAMS})  # Linen variables with the params collection only


def test_file_dirname_is_a_string_never_code(tmp_path):
    """mmcv pastes the directory name into the source: a quote in it runs code."""
    folder = tmp_path / "runs'+str(undefined_name)+'x"
    folder.mkdir()
    (folder / "cfg.py").write_text("work_dir = '{{ fileDirname }}/out'\n"
                                   "name = {{ fileBasenameNoExtension }}\n"
                                   "ext = '{{fileExtname}}'\n")
    (folder / "cfg.json").write_text('{"work_dir": "{{ fileDirname }}/w"}')
    cfg = oss.load_config(folder / "cfg.py")
    posix = str(folder).replace(os.sep, "/")
    assert cfg == dict(work_dir=f"{posix}/out", name="cfg", ext=".py")
    assert oss.load_config(folder / "cfg.json") == dict(work_dir=f"{posix}/w")


@pytest.mark.parametrize("value", [None, [], {}, ""])
def test_empty_custom_hooks_mean_none(value):
    """Upstream's train entry point skips a falsy custom_hooks before asserting a list."""
    build(custom_hooks=value)
