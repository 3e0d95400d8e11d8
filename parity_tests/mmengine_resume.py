"""An MMEngine run checkpointed by the real ``Runner``, resumed by the real ``Runner.resume``
and continued in JAX with ``oss.from_torch_checkpoint``: the per-iteration deviations.

``Scenario(cfg, shapes, ...).run(('epoch', e), ('iter', k), ...)`` trains the real run
uninterrupted, saving those checkpoints on the way (``torch_ref.mmengine.run_mmengine(...,
checkpoint_*=...)``);
``resume_torch(path, m)`` continues it ``m`` iterations with MMEngine's own resume
(``run_mmengine(..., resume_from=path)``), ``resume_jax(path, m)`` with
``from_torch_checkpoint`` and ``build_optimizer``, on the same gradients. A Flax layout
(``flax_params=`` a Linen template) receives the gradients through
``oss.torch_to_flax_layout`` and its parameters are compared in torch's layout.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from mmengine_parity import draw, jax_order

import optax_selfsup as oss
from optax_selfsup.names import leaf_names, make_name_map, nest_names
from torch_ref.mmengine import run_mmengine

TORCH_NAME = make_name_map("default")  # conv.kernel -> conv.weight ...


def deviation(ours: dict, ref: dict) -> float:
    return max(float(np.max(np.abs(ours[k] - ref[k]) / np.maximum(1.0, np.abs(ref[k])),
                            initial=0.0)) for k in ref)


@dataclasses.dataclass
class Scenario:
    cfg: dict
    shapes: dict
    modules: dict
    steps_per_epoch: int
    total: int  # gradients drawn: iterations 0 .. total - 1
    dtype: type = np.float32
    amp: bool = False
    inject_inf: dict = dataclasses.field(default_factory=dict)  # {iteration: torch name}
    seed: int = 0
    flax_params: object = None  # a Linen params template (Flax layout), else the torch layout
    checkpoint_dir: str | None = None  # where the checkpoints go (pytest's tmp_path), else /tmp

    def __post_init__(self):
        values, self.grads = draw(self.shapes, self.total, self.seed, self.dtype)
        self.values = {k: values[k] for k in jax_order(values)}  # registration order
        self._uninterrupted = None
        self._step = None  # (template, tx, jitted step), built once per scenario

    def finished(self, ckpt) -> int:
        kind, n = ckpt
        return n if kind == "iter" else n * self.steps_per_epoch

    def _infs(self, start, stop):
        return {t - start: name for t, name in self.inject_inf.items() if start <= t < stop}

    def run(self, *ckpts):
        """The uninterrupted run over all ``total`` gradients, saving ``ckpts`` on the way
        (``('iter', k)`` / ``('epoch', e)``); ``run.checkpoints`` maps them to the files."""
        if self._uninterrupted is None or not set(ckpts) <= set(
                self._uninterrupted.checkpoints):
            self._uninterrupted = run_mmengine(
                self.cfg, self.values, self.grads, dtype=self.dtype,
                steps_per_epoch=self.steps_per_epoch, modules=self.modules,
                inject_inf=self._infs(0, self.total),
                checkpoint_iters=[n for kind, n in ckpts if kind == "iter"],
                checkpoint_epochs=[n for kind, n in ckpts if kind == "epoch"],
                checkpoint_dir=self.checkpoint_dir)
        return self._uninterrupted

    def checkpoint(self, ckpt) -> str:
        return self.run(ckpt).checkpoints[ckpt]

    def resume_torch(self, path, start: int, m: int):
        return run_mmengine(self.cfg, self.values, self.grads[start:start + m],
                            dtype=self.dtype, steps_per_epoch=self.steps_per_epoch,
                            modules=self.modules, inject_inf=self._infs(start, start + m),
                            resume_from=path)

    def _template(self):
        if self.flax_params is not None:
            return jax.tree.map(lambda x: jnp.zeros(x.shape, self.dtype), self.flax_params)
        return nest_names({k: jnp.zeros(v.shape, self.dtype) for k, v in self.values.items()})

    def _stepper(self):
        if self._step is None:
            template = self._template()
            tx = oss.build_optimizer(self.cfg, template, steps_per_epoch=self.steps_per_epoch)
            amp = self.amp

            @jax.jit
            def step(p, s, g):
                if amp:
                    g = jax.tree.map(lambda x: x * oss.loss_scale(s).astype(x.dtype), g)
                updates, s = tx.update(g, s, p)
                return optax.apply_updates(p, updates), s

            self._step = template, step
        return self._step

    def resume_jax(self, path, start: int, m: int):
        """``(resumed, per-iteration params in torch names and layout, stepped, scales)``."""
        with jax.enable_x64(np.dtype(self.dtype) == np.float64):
            flax = self.flax_params is not None
            template, step = self._stepper()
            convert = oss.torch_to_flax_layout if flax else None
            resumed = oss.from_torch_checkpoint(path, self.cfg, template,
                                                steps_per_epoch=self.steps_per_epoch,
                                                convert=convert)
            names = leaf_names(template)
            torch_names = [TORCH_NAME(n) for n in names] if flax else names
            treedef = jax.tree.structure(template)

            params, state = resumed.params, resumed.opt_state
            out, stepped, scales = [], [], []
            for t in range(start, start + m):
                g = {k: np.array(v) for k, v in self.grads[t].items()}
                if t in self.inject_inf:
                    g[self.inject_inf[t]].reshape(-1)[0] = np.inf
                leaves = [oss.torch_to_flax_layout(n, g[tn]) if flax else g[tn]
                          for n, tn in zip(names, torch_names)]
                scales.append(float(oss.loss_scale(state)) if self.amp else None)
                params, state = step(params, state, jax.tree.unflatten(
                    treedef, [jnp.asarray(x) for x in leaves]))
                stepped.append(bool(oss.has_updated(state)))
                out.append({tn: (oss.flax_to_torch_layout(n, np.asarray(x)) if flax
                                 else np.asarray(x))
                            for n, tn, x in zip(names, torch_names, jax.tree.leaves(params))})
        return resumed, out, stepped, scales

    def compare(self, ckpt, m: int):
        """Checkpoint, then both resumes ``m`` iterations: ``(deviations per iteration, the
        torch resume, the JAX resume, path)``."""
        path = self.checkpoint(ckpt)
        start = self.finished(ckpt)
        torch_run = self.resume_torch(path, start, m)
        resumed, ours, stepped, scales = self.resume_jax(path, start, m)
        devs = [deviation(ours[t], torch_run.params[t]) for t in range(m)]
        assert stepped == torch_run.stepped.tolist(), (stepped, torch_run.stepped)
        if self.amp:
            np.testing.assert_array_equal(scales, torch_run.loss_scale)
        return devs, torch_run, resumed, path
