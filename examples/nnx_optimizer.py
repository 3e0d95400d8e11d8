"""An nnx.Optimizer loop driven by an MMSelfSup config (SimCLR's LARS + warmup + cosine).

    python examples/nnx_optimizer.py [--epochs 3] [--steps-per-epoch 20]

A small NNX ResNet-style network, named like the torch model (conv1, bn1,
layer1, fc) so the config's regexes exclude its BatchNorm and bias parameters
from weight decay and LARS adaptation, trains on a generated regression task.
It prints the per-parameter table, then the loss and the lr per epoch.
"""

from __future__ import annotations

import argparse
import warnings

import jax.numpy as jnp
import numpy as np
from flax import nnx

import optax_selfsup as oss

# found from any working directory: a file at this path wins, else the recipe shipped with
# optax_selfsup (oss.load_config looks up paths under configs/ among them)
CONFIG = "configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"


class Block(nnx.Module):
    def __init__(self, width, rngs):
        self.conv1 = nnx.Conv(width, width, (3, 3), use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(width, rngs=rngs)

    def __call__(self, x):
        return nnx.relu(x + self.bn1(self.conv1(x)))


class Net(nnx.Module):
    def __init__(self, rngs, width=8):
        self.conv1 = nnx.Conv(3, width, (3, 3), use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(width, rngs=rngs)
        self.layer1 = nnx.List([Block(width, rngs), Block(width, rngs)])
        self.fc = nnx.Linear(width, 1, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.bn1(self.conv1(x)))
        for block in self.layer1:
            x = block(x)
        return self.fc(x.mean(axis=(1, 2)))[:, 0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs to train")
    parser.add_argument("--steps-per-epoch", type=int, default=20, help="batches per epoch")
    args = parser.parse_args(argv)

    cfg = oss.load_config(CONFIG)
    cfg = oss.merge_options(cfg, [f"runner.max_epochs={args.epochs}", "lr_config.warmup_iters=1",
                                  "optimizer.lr=0.3"])
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(args.steps_per_epoch, 16, 8, 8, 3)).astype(np.float32)
    ys = xs[..., 0].mean(axis=(2, 3)) * 8.0

    model = Net(nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    print(oss.format_table(oss.describe(cfg, params)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", oss.NormLayerWarning)
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=args.steps_per_epoch)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    losses = []
    for epoch in range(args.epochs):
        for x, y in zip(xs, ys):
            losses.append(float(train_step(model, optimizer, jnp.asarray(x), jnp.asarray(y))))
        lrs = oss.group_values(oss.current_hparams(optimizer.opt_state)["lr"])
        print(f"epoch {epoch + 1}: loss {np.mean(losses[-args.steps_per_epoch:]):.4f} "
              f"lr {max(lrs.values()):.4g} (iteration {int(oss.iteration(optimizer.opt_state))})")
    return losses


if __name__ == "__main__":
    main()
