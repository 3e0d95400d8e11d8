"""The SimCLR-like 200 epochs x 5005 iterations run (1,001,000 iterations) in float32."""

import jax
import jax.numpy as jnp
import numpy as np
import torch

import optax_selfsup as oss
import torch_ref

SPE, EPOCHS = 5005, 200
BASE = 0.3
CFG = dict(policy="CosineAnnealing", min_lr=0.0, warmup="linear", warmup_iters=10,
           warmup_ratio=1e-4, warmup_by_epoch=True)


def _checked_iterations():
    w = 10 * SPE
    last = SPE * EPOCHS - 1
    epoch_starts = np.arange(EPOCHS) * SPE
    boundaries = np.concatenate([epoch_starts, epoch_starts - 1, epoch_starts + 1,
                                 [0, 1, w - 2, w - 1, w, w + 1, last - 1, last]])
    rng = np.random.default_rng(0)
    spread = rng.integers(0, last + 1, size=10_000)
    its = np.unique(np.concatenate([boundaries, spread, np.arange(0, 2000)]))
    return its[(its >= 0) & (its <= last)]


def test_million_iteration_cosine_within_1e6_of_base():
    its = _checked_iterations()
    assert len(its) >= 10_000
    schedule = oss.lr_schedule(CFG, BASE, steps_per_epoch=SPE, max_epochs=EPOCHS)
    ours = np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(its, jnp.int32)), np.float64)
    assert ours.dtype == np.float64 and jnp.asarray(schedule(0)).dtype == jnp.float32

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=BASE)
    runner = torch_ref.ScheduleRunner(opt, [torch_ref.build_schedule_hook(CFG, "lr")],
                                      steps_per_epoch=SPE, max_epochs=EPOCHS)
    runner.call("before_run")
    ref = []
    for it in its:
        runner.jump_to(int(it))
        ref.append(opt.param_groups[0]["lr"])
    ref = np.asarray(ref)
    err = np.abs(ours - ref)
    assert err.max() <= 1e-6 * BASE, f"max |dlr| = {err.max():.3g} at it={its[err.argmax()]}"
    # the tail keeps relative precision too (the cancellation near f = 1)
    tail = its >= SPE * (EPOCHS - 1)
    assert np.all(np.abs(ours[tail] - ref[tail]) <= 1e-5 * ref[tail])
