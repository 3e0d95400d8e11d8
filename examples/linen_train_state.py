"""A Linen TrainState loop driven by an MMSelfSup config (BYOL's LARS with update_interval=16).

    python examples/linen_train_state.py [--epochs 2] [--steps-per-epoch 32]

A small Linen network with BatchNorm (its ``batch_stats`` updated every
micro-batch, as in torch) trains on a generated regression task with gradient
accumulation: ``TrainState.apply_gradients`` calls ``tx.update`` every
micro-batch, and the transformation applies the averaged update on every 16th.
"""

from __future__ import annotations

import argparse
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.training import train_state

import optax_selfsup as oss

# found from any working directory: a file at this path wins, else the recipe shipped with
# optax_selfsup (oss.load_config looks up paths under configs/ among them)
CONFIG = "configs/selfsup/byol/byol_resnet50_16xb256-accum16-coslr-200e_in1k.py"


class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.Conv(8, (3, 3), use_bias=False, name="conv1")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn1")(x))
        return nn.Dense(1, name="fc")(x.mean(axis=(1, 2)))[:, 0]


class TrainState(train_state.TrainState):
    batch_stats: dict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs to train")
    parser.add_argument("--steps-per-epoch", type=int, default=64, help="micro-batches per epoch")
    args = parser.parse_args(argv)

    cfg = oss.load_config(CONFIG)
    cfg = oss.merge_options(cfg, [f"runner.max_epochs={args.epochs}", "lr_config.warmup_iters=1",
                                  "optimizer.lr=0.5"])
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(args.steps_per_epoch, 16, 8, 8, 3)).astype(np.float32)
    ys = xs[..., 0].mean(axis=(2, 3)) * 8.0

    model = Net()
    variables = model.init(jax.random.key(0), jnp.asarray(xs[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", oss.NormLayerWarning)
        tx = oss.build_optimizer(cfg, variables["params"], steps_per_epoch=args.steps_per_epoch)
    state = TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                              batch_stats=variables["batch_stats"])

    @jax.jit
    def train_step(state, x, y):
        def loss_fn(params):
            out, updates = state.apply_fn({"params": params, "batch_stats": state.batch_stats},
                                          x, mutable=["batch_stats"])
            return jnp.mean((out - y) ** 2), updates["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        state = state.apply_gradients(grads=grads).replace(batch_stats=stats)
        return state, loss

    losses, updates = [], 0
    for epoch in range(args.epochs):
        for x, y in zip(xs, ys):
            state, loss = train_step(state, jnp.asarray(x), jnp.asarray(y))
            losses.append(float(loss))
            updates += bool(oss.has_updated(state.opt_state))
        lr = max(oss.group_values(oss.current_hparams(state.opt_state)["lr"]).values())
        print(f"epoch {epoch + 1}: loss {np.mean(losses[-args.steps_per_epoch:]):.4f} "
              f"lr {lr:.4g}, {updates} optimizer updates after "
              f"{int(oss.iteration(state.opt_state))} micro-batches")
    return losses, updates


if __name__ == "__main__":
    main()
