"""The four ways of running one optimizer micro-step that the benchmark compares.

(a) ``built``: ``oss.build_optimizer``'s transformation, ``step = update +
    apply_updates`` in ``jax.jit(step, donate_argnums=(0, 1))``;
(a-ip) ``built in-place``: the same transformation stepped with
    ``oss.update_and_apply`` (the params written inside the optimizer's step);
(b) ``fused``: bench/fused.py's hand-written jnp (the practical limit);
(c) ``stock``: the nearest stock optax chain (bench/stock.py);
(d) ``torch``: torch_ref in eager torch (``torch-foreach``: torch.optim's
    multi-tensor kernels, for optimizers that have them).

Every variant owns device copies of the params and its state, steps one
micro-iteration at a time (``step(it)``: ``it`` is the global micro-iteration,
the same for all variants) and reports what it cost to build: compile seconds
(trace + lower + compile, i.e. the first call's overhead), XLA's temp
allocation (per-step scratch) and how many output bytes were not aliased to the
donated inputs (fresh buffers per step).
"""

from __future__ import annotations

import time
import warnings

import jax
import optax
from fused import build_fused
from stock import TorchRun, stock_optax
from trees import to_device, tree_bytes

import optax_selfsup as oss


def compile_aot(fn, *args):
    """(compiled, info) for a jitted function: seconds, temp and non-aliased output bytes."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    seconds = time.perf_counter() - start
    mem = compiled.memory_analysis()
    info = dict(compile_s=seconds, temp=mem.temp_size_in_bytes,
                fresh=mem.output_size_in_bytes - mem.alias_size_in_bytes)
    return compiled, info


def optax_step(tx, in_place=False):
    def step(params, state, grads):
        if in_place:
            return oss.update_and_apply(tx, grads, state, params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


class OneFunction:
    """(a) and (c): one jitted function for every micro-step."""

    def __init__(self, label, tx, params, grads, in_place=False):
        self.label, self.grads = label, grads
        self.params = to_device(params)
        self.state = tx.init(self.params)
        self.fn, info = compile_aot(optax_step(tx, in_place), self.params, self.state, grads)
        self.info = {"update": info, "accumulate": info}
        self.state_bytes = tree_bytes(self.state)
        self.hlo = {"step": self.fn.as_text}

    def step(self, it):
        self.params, self.state = self.fn(self.params, self.state, self.grads)
        jax.block_until_ready(self.params)

    def flat_params(self):
        return dict(zip(oss.leaf_names(self.params), jax.tree.leaves(self.params)))


class Built(OneFunction):
    def __init__(self, cfg, params, grads, spe, in_place=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tx = oss.build_optimizer(cfg, params, steps_per_epoch=spe)
        label = "a built in-place" if in_place else "a built"
        super().__init__(label, tx, params, grads, in_place)


class Stock(OneFunction):
    def __init__(self, recipe, params, grads):
        super().__init__("c stock", stock_optax(recipe, params), params, grads)


class Fused:
    """(b): one function, or start / accumulate / update functions with update_interval."""

    label = "b fused"

    def __init__(self, recipe, params, grads):
        self.fused, self.k, self.grads = build_fused(recipe), recipe.every_k, grads
        self.params = to_device(params)
        self.state = self.fused.init(self.params)
        self.acc = jax.tree.map(jax.numpy.zeros_like, self.params) if self.k > 1 else None
        self.fns, self.hlo, infos = {}, {}, {}
        parts = ("step",) if self.k == 1 else ("start", "accumulate", "update")
        for part in parts:
            args = ((self.params, self.state, grads) if part == "step" else
                    (self.params, self.state, self.acc, grads) if part == "update" else
                    (self.acc, grads))
            self.fns[part], infos[part] = compile_aot(getattr(self.fused, part), *args)
            self.hlo[part] = self.fns[part].as_text
        if self.k == 1:
            self.info = {"update": infos["step"], "accumulate": infos["step"]}
        else:  # accumulate-only rows: the costlier of start / accumulate, compile of both
            acc_info = dict(max(infos["start"], infos["accumulate"], key=lambda i: i["temp"]))
            acc_info["compile_s"] = infos["start"]["compile_s"] + infos["accumulate"]["compile_s"]
            self.info = {"update": infos["update"], "accumulate": acc_info}
        self.state_bytes = tree_bytes(self.state) + (tree_bytes(self.acc) if self.k > 1 else 0)

    def step(self, it):
        kind = self.fused.micro_step(it)
        if kind == "step":
            self.params, self.state = self.fns[kind](self.params, self.state, self.grads)
        elif kind == "update":
            self.params, self.state, self.acc = self.fns[kind](self.params, self.state,
                                                               self.acc, self.grads)
        else:
            self.acc = self.fns[kind](self.acc, self.grads)
            jax.block_until_ready(self.acc)
            return
        jax.block_until_ready(self.params)

    def flat_params(self):
        return dict(zip(oss.leaf_names(self.params), jax.tree.leaves(self.params)))


class Torch:
    """(d): torch_ref eager, stepped in mmcv's hook order."""

    def __init__(self, cfg, flat_params, flat_grads, spe, foreach=False):
        import torch

        self.label = "d torch-foreach" if foreach else "d torch"
        self.run = TorchRun(cfg, flat_params, spe, foreach=foreach)
        self.grads = {n: torch.tensor(g) for n, g in flat_grads.items()}
        self.info = None
        self.hlo = {}

    @property
    def state_bytes(self):
        return self.run.state_bytes()

    def step(self, it):
        self.run.step(self.grads)

    def flat_params(self):
        return self.run.params()


def has_foreach(cfg) -> bool:
    return cfg["optimizer"]["type"] != "LARS"  # torch.optim classes have foreach kernels
