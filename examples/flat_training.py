"""A Linen training loop with the parameters living flat (SimCLR's LARS + clip config).

    python examples/flat_training.py [--epochs 3] [--steps-per-epoch 10]

The parameters are one ``[rows, 128]`` buffer (``oss.flat_layout``: tensors grouped by
what LARS does to them); the loss reads the tensors as slices of it
(``layout.unflatten``), so ``jax.grad`` returns the gradient as the same kind of buffer
and ``build_optimizer(..., layout='flat')`` updates it in a few kernels, with every
per-tensor rule of the config (LARS trust ratios and the exclusion of BatchNorm / bias
from them, per-group weight decay, the clip's global norm). The same run with
per-tensor params prints the same losses (docs/flat-layout.md).
"""

from __future__ import annotations

import argparse
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import optax_selfsup as oss

CONFIG = "configs/selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"


class Net(nn.Module):
    """Named like the torch model (conv1, bn1, fc) so the config's regexes apply."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(8, (3, 3), use_bias=False, name="conv1")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=False, name="bn1")(x))
        x = nn.Conv(8, (3, 3), use_bias=False, name="conv2")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=False, name="bn2")(x))
        return nn.Dense(1, name="fc")(x.mean(axis=(1, 2)))[:, 0]


def main(argv=None, layout="flat"):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps-per-epoch", type=int, default=10)
    args = parser.parse_args(argv)

    cfg = oss.merge_options(oss.load_config(CONFIG), [
        f"runner.max_epochs={args.epochs}", "lr_config.warmup_iters=1", "optimizer.lr=0.3",
        "optimizer_config.grad_clip.max_norm=5.0"])
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(args.steps_per_epoch, 16, 8, 8, 3)).astype(np.float32)
    ys = xs[..., 0].mean(axis=(2, 3)) * 8.0

    model = Net()
    variables = model.init(jax.random.PRNGKey(0), jnp.asarray(xs[0]))
    params, stats = variables["params"], {"batch_stats": variables["batch_stats"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", oss.NormLayerWarning)
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=args.steps_per_epoch,
                                 layout=layout)
        flat = oss.flat_layout(cfg, params)
    if layout == "flat":
        print(flat)
        params = flat.flatten(params)                    # the params live here from now on
    opt_state = tx.init(params)

    def loss_fn(params, stats, x, y):
        tree = flat.unflatten(params) if layout == "flat" else params   # slices of the buffer
        out, stats = model.apply({"params": tree, **stats}, x, mutable=["batch_stats"])
        return jnp.mean((out - y) ** 2), stats

    @jax.jit
    def train_step(params, opt_state, stats, x, y):
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y)
        params, opt_state = oss.update_and_apply(tx, grads, opt_state, params)  # a Flat
        return params, opt_state, stats, loss

    losses = []
    for epoch in range(args.epochs):
        for x, y in zip(xs, ys):
            params, opt_state, stats, loss = train_step(params, opt_state, stats,
                                                        jnp.asarray(x), jnp.asarray(y))
            losses.append(float(loss))
        hp = oss.current_hparams(opt_state)               # per parameter, by name
        print(f"epoch {epoch + 1}: loss {np.mean(losses[-args.steps_per_epoch:]):.4f} "
              f"lr {float(hp['lr']['conv1']['kernel']):.4g} "
              f"grad_norm {float(hp['grad_norm']):.3f}")
    if layout == "flat":
        params = flat.unflatten(params)                  # per tensor, for export
    return losses, params


if __name__ == "__main__":
    main()
