"""``optax-selfsup parity`` PASSes on every shipped config of both generations.

MMSelfSup 0.x configs are compared with torch_ref, MMEngine configs (configs/mmselfsup1/,
configs/mmpretrain/) with the real MMEngine 0.10.7 Runner and MMPretrain 1.2.0's optimizers,
constructors and hooks (``torch_ref.mmengine``), on the same random gradients, at the
command's default tolerances (parameters 1e-5 relative to max(1, |p|), hyperparameters 1e-6
of their peak, the same update iterations).

In CI every config runs a prefix of its run at one iteration per epoch (``--steps-per-epoch 1
--iters 40``: 40 epoch boundaries, the warmups of most recipes, accumulation updates; the
20-epoch configs at two per epoch, their whole run); the
default run, compressed to about 600 iterations over the whole schedule, is marked slow.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from optax_selfsup import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
NOT_OPTIMIZER_CONFIGS = {"_base_/default_runtime.py"}
SHIPPED = sorted(os.path.relpath(os.path.join(d, f), CONFIGS)
                 for d, _, files in os.walk(CONFIGS) for f in files if f.endswith(".py")
                 and os.path.relpath(os.path.join(d, f), CONFIGS) not in NOT_OPTIMIZER_CONFIGS)
MMENGINE = ("mmselfsup1/", "mmpretrain/")
# runs of 20 epochs: 2 iterations per epoch so that --iters 40 fits in the run (its whole length)
SHORT_RUNS = {"misc/adamw_fp16-dynamic_accum4.py", "misc/sgd_gradclip-inf_coslr.py",
              "tutorial/cyclic_lr_momentum.py"}


def _numbers(text: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(params|lr|momentum|weight_decay): (\S+) ", text, re.M)}


def _parity(config: str, *argv: str, capsys) -> tuple[int, str, float]:
    start = time.perf_counter()
    status = cli.main(["parity", os.path.join("configs", config), *argv])
    out = capsys.readouterr().out
    return status, out, time.perf_counter() - start


def test_every_shipped_config_is_run():
    assert len(SHIPPED) >= 28
    assert sum(c.startswith(MMENGINE) for c in SHIPPED) >= 9


@pytest.mark.parametrize("config", SHIPPED)
def test_parity_prefix_passes(config, capsys):
    spe = "2" if config in SHORT_RUNS else "1"
    status, out, seconds = _parity(config, "--steps-per-epoch", spe, "--iters", "40",
                                   capsys=capsys)
    reference = "MMEngine 0.10.7 Runner" if config.startswith(MMENGINE) else "torch_ref"
    print(f"{config}: {seconds:.1f}s {_numbers(out)}")
    assert status == 0, out
    assert out.rstrip().endswith("PASS") and f"against {reference}" in out, out
    assert "update iterations: identical" in out
    if config.startswith(MMENGINE):
        assert "weight_decay: " in out and "over every iteration" in out


@pytest.mark.slow
@pytest.mark.parametrize("config", SHIPPED)
def test_parity_whole_compressed_run_passes(config, capsys):
    status, out, seconds = _parity(config, capsys=capsys)
    print(f"{config}: {seconds:.1f}s {_numbers(out)}")
    assert status == 0, out
    assert out.rstrip().endswith("PASS"), out
    assert ", the whole run" in out, out
