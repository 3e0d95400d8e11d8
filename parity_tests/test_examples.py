"""The Linen and NNX examples run as documented and train, from any working directory
(they name their recipe by its path under configs/)."""

from __future__ import annotations

import importlib.util
import os
import sys

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples",
                                                                     f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses (TrainState) look their module up
    spec.loader.exec_module(module)
    return module


def test_nnx_optimizer_example_trains(monkeypatch):
    monkeypatch.chdir(os.path.join(ROOT, "examples"))  # python nnx_optimizer.py
    losses = _load("nnx_optimizer").main(["--epochs", "2", "--steps-per-epoch", "10"])
    assert np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])


def test_linen_train_state_example_accumulates(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # anywhere
    losses, updates = _load("linen_train_state").main(["--epochs", "2",
                                                       "--steps-per-epoch", "64"])
    assert updates == 8  # update_interval=16 over 128 micro-batches
    assert np.all(np.isfinite(losses)) and np.mean(losses[-32:]) < np.mean(losses[:32])


def test_flat_training_example_equals_the_per_tensor_run(monkeypatch):
    """Params living flat (Flat gradients from slices) against the per-tensor layout."""
    monkeypatch.chdir(ROOT)
    module = _load("flat_training")
    argv = ["--epochs", "2", "--steps-per-epoch", "6"]
    flat_losses, flat_params = module.main(argv)
    losses, params = module.main(argv, layout=None)
    np.testing.assert_allclose(flat_losses, losses, rtol=2e-5)
    for a, b in zip(jax.tree.leaves(flat_params), jax.tree.leaves(params)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    assert np.all(np.isfinite(flat_losses)) and len(flat_losses) == 12
