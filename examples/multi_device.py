"""Data-parallel training with an MMSelfSup config on every local device (jax.sharding).

    python examples/multi_device.py                          # the devices you have
    python examples/multi_device.py --fake-cpu-devices 8     # 8 CPU devices, no GPU needed
    python examples/multi_device.py --fake-cpu-devices 8 --shard-params

The global batch is split over a 1-d mesh axis 'data'; params and optimizer state are
replicated, or (``--shard-params``) their large kernels are split over the same axis
(ZeRO/FSDP style). One ``jax.jit`` step computes the loss of the whole global batch:
XLA inserts the cross-device reduction of the gradient itself, so ``tx.update`` sees
the global-mean gradient, what a DDP all-reduce gives torch. Gradient
accumulation (``update_interval``) then averages those means over micro-steps, as
MMSelfSup's DistOptimizerHook does. LARS trust ratios and the clip norm are norms of
the whole (sharded) tensors. At the end the same steps run on one device and the
largest deviation is printed: float32 rounding, also with replicated params (about
3e-8), since each device sums its own rows of the batch before the devices' sums are
added, another order of additions than one device's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

# found from any working directory: a file at this path wins, else the recipe shipped with
# optax_selfsup (oss.load_config looks up paths under configs/ among them)
CONFIG = "configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fake-cpu-devices", type=int, default=0,
                        help="run on N CPU devices (set before jax is imported)")
    parser.add_argument("--shard-params", action="store_true",
                        help="split large kernels (and their optimizer slots) over the devices")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--update-interval", type=int, default=2,
                        help="micro-batches per optimizer update (optimizer_config)")
    parser.add_argument("--steps", type=int, default=24, help="micro-batches to train")
    parser.add_argument("--batch-per-device", type=int, default=8)
    return parser.parse_args(argv)


ARGS = parse_args()
if ARGS.fake_cpu_devices:  # must happen before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform"
                               f"_device_count={ARGS.fake_cpu_devices}").strip()
    os.environ["JAX_PLATFORMS"] = "cpu"

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import optax_selfsup as oss  # noqa: E402


class MLP(nn.Module):
    """fc1 -> ln1 -> relu -> fc2: torch names fc1.weight, ln1.weight, fc2.bias, ..."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.LayerNorm(name="ln1")(nn.Dense(64, name="fc1")(x)))
        return nn.Dense(32, name="fc2")(x)


def loss_fn(params, batch):
    pred = MLP().apply({"params": params}, batch["x"])
    return jnp.mean((pred - batch["y"]) ** 2)  # the mean over the GLOBAL batch


def batches(steps, global_batch, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(32, 32)).astype(np.float32) / 6
    for _ in range(steps):
        x = rng.normal(size=(global_batch, 32)).astype(np.float32)
        yield {"x": x, "y": np.tanh(x @ w)}


def param_sharding(mesh, leaf, shard_params):
    """Replicated, or the last axis split over 'data' when it divides evenly."""
    if shard_params and leaf.ndim == 2 and leaf.shape[-1] % mesh.size == 0:
        return NamedSharding(mesh, P(None, "data"))
    return NamedSharding(mesh, P())


def train(cfg, params, data, mesh=None, shard_params=False, steps_per_epoch=None):
    """``len(data)`` micro-steps; with a mesh, everything is placed on it first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the config's BN rules match nothing in this MLP
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=steps_per_epoch)
    p_sh = s_sh = b_sh = None
    if mesh is not None:
        p_sh = jax.tree.map(lambda x: param_sharding(mesh, x, shard_params), params)
        params = jax.device_put(params, p_sh)
    state = tx.init(params)  # eagerly: every slot is created with its param's sharding
    if mesh is not None:
        # the rest (clock, step counts, per-leaf lr vector, loss scale) is replicated
        state = jax.tree.map(lambda x: x if isinstance(x.sharding, NamedSharding)
                             else jax.device_put(x, NamedSharding(mesh, P())), state)
        s_sh = jax.tree.map(lambda x: x.sharding, state)
        b_sh = NamedSharding(mesh, P("data"))  # batch rows split over the devices

    @jax.jit
    def step(params, state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)  # grads: global mean
        updates, state = tx.update(grads, state, params)  # accumulates; updates every k
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for batch in data:
        batch = jax.device_put(batch, b_sh) if mesh is not None else batch
        params, state, loss = step(params, state, batch)
        losses.append(float(loss))
    return params, state, losses, (p_sh, s_sh)


def main():
    devices = jax.devices()
    mesh = Mesh(np.array(devices), ("data",))
    cfg = oss.load_config(ARGS.config)
    cfg = oss.merge_options(cfg, [f"optimizer_config.update_interval={ARGS.update_interval}"])
    params = MLP().init(jax.random.key(0), jnp.zeros((1, 32)))["params"]
    data = list(batches(ARGS.steps, ARGS.batch_per_device * len(devices)))
    print(f"{len(devices)} devices ({devices[0].platform}), mesh {dict(mesh.shape)}, "
          f"global batch {data[0]['x'].shape[0]}, update_interval {ARGS.update_interval}, "
          f"params {'sharded' if ARGS.shard_params else 'replicated'}")

    start = time.time()
    out, state, losses, (p_sh, s_sh) = train(cfg, params, data, mesh, ARGS.shard_params,
                                             steps_per_epoch=4)
    print(f"trained {ARGS.steps} micro-steps in {time.time() - start:.1f} s; loss "
          f"{losses[0]:.4f} -> {losses[-1]:.4f}; iteration {int(oss.iteration(state))}")
    kernel = out["fc1"]["kernel"]
    print(f"fc1.kernel {kernel.shape}: {kernel.sharding.spec}, "
          f"{len(kernel.addressable_shards)} shards of {kernel.addressable_shards[0].data.shape}")
    moved = [str(k) for k, a, want in zip(
        range(10**6), jax.tree.leaves((out, state)), jax.tree.leaves((p_sh, s_sh)))
        if not a.sharding.is_equivalent_to(want, a.ndim)]
    print(f"shardings kept through the step: {not moved}")

    single, *_ = train(cfg, params, data, mesh=None, steps_per_epoch=4)
    dev = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.maximum(1, np.abs(b))))
              for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(single)))
    print(f"max |p_{len(devices)} - p_1| / max(1, |p_1|) = {dev:.3g} (one-device run)")
    return 0 if dev <= 1e-5 and not moved else 1


if __name__ == "__main__":
    sys.exit(main())
