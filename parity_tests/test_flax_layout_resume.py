"""Continue a real torch run, saved as an mmcv checkpoint, in a Flax Linen model.

A small torch net (Conv2d, BatchNorm2d, Embedding, a square Linear, LayerNorm and a
non-square Linear) trains N iterations on real forward/backward passes under torch_ref
(the mmcv 1.x reference), torch_ref/checkpoint.py writes its mmcv checkpoint ({'meta',
'state_dict', 'optimizer'}; the state_dict is the module's, BatchNorm buffers included,
as mmcv writes it), and torch goes on M iterations. A Flax Linen net with the same layers
reads the file with ``from_torch_checkpoint(..., convert=oss.torch_to_flax_layout)``
and goes on the same M iterations with JAX's own gradients: the parameters agree to
float32 rounding (float64: 1e-12). Every optimizer slot shaped like its parameter is
laid out as the parameter (a conv's momentum transposed to HWIO, a square Dense's
momentum transposed too, which no shape check could catch).
"""

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import optax_selfsup as oss
import torch_ref
from optax_selfsup.checkpoint import TorchCheckpointError
from optax_selfsup.names import leaf_names, make_name_map
from torch_ref.checkpoint import save_checkpoint

SPE, N, M = 3, 6, 6  # steps per epoch; checkpoint after N iterations; M more
BATCH, CLASSES, SIZE = 4, 4, 6
OPTIMIZERS = {
    "sgd_nesterov": dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True),
    "lars": dict(type="LARS", lr=0.3, momentum=0.9, weight_decay=1e-6),
    "adamw_amsgrad": dict(type="AdamW", lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05,
                          amsgrad=True),
    "rmsprop_centered": dict(type="RMSprop", lr=1e-3, momentum=0.9, centered=True),
    "nadam": dict(type="NAdam", lr=1e-2),  # a scalar slot (mu_product) next to the tensors
}
TOL = {np.float32: 1e-5, np.float64: 1e-12}
TORCH_NAME = make_name_map("default")  # conv.kernel -> conv.weight ...


def config(name):
    return dict(optimizer=dict(OPTIMIZERS[name]), optimizer_config=dict(),
                lr_config=dict(policy="CosineAnnealing", min_lr=0.0, warmup="linear",
                               warmup_iters=2, warmup_ratio=0.1),
                runner=dict(type="EpochBasedRunner", max_epochs=(N + M) // SPE))


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # no bias before a batch-statistics BatchNorm: its gradient is rounding noise, which
        # Adam-style updates would amplify differently in the two frameworks
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.embed = torch.nn.Embedding(CLASSES, 8)
        self.fc1 = torch.nn.Linear(8, 8)  # square: a transposed kernel has the same shape
        self.ln = torch.nn.LayerNorm(8)
        self.fc2 = torch.nn.Linear(8, CLASSES)

    def forward(self, x, idx):  # training mode: BatchNorm normalises with the batch's stats
        h = torch.relu(self.bn(self.conv(x))).mean((2, 3)) + self.embed(idx)
        return self.fc2(torch.tanh(self.ln(self.fc1(h))))


class FlaxNet(nn.Module):
    @nn.compact
    def __call__(self, x, idx):  # x: NHWC
        h = nn.Conv(8, (3, 3), padding=1, use_bias=False, name="conv")(x)
        h = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5,
                         use_fast_variance=False, name="bn")(h)
        h = jax.nn.relu(h).mean((1, 2)) + nn.Embed(CLASSES, 8, name="embed")(idx)
        h = nn.LayerNorm(epsilon=1e-5, use_fast_variance=False, name="ln")(
            nn.Dense(8, name="fc1")(h))
        return nn.Dense(CLASSES, name="fc2")(jnp.tanh(h))


def batches(steps, dtype):
    rng = np.random.default_rng(1)
    return [dict(x=rng.normal(size=(BATCH, 3, SIZE, SIZE)).astype(dtype),
                 idx=rng.integers(0, CLASSES, size=BATCH),
                 y=rng.normal(size=(BATCH, CLASSES)).astype(dtype)) for _ in range(steps)]


def torch_run(cfg, data, dtype, path):
    """torch_ref trains N + M iterations, writing the checkpoint at N; the torch-layout
    params after each iteration."""
    torch.manual_seed(0)
    net = TorchNet().to(torch.float64 if dtype == np.float64 else torch.float32)
    named = list(net.named_parameters())
    runner = torch_ref.Runner(torch_ref.build(cfg, named, steps_per_epoch=SPE))

    def gradients(it):
        b = data[it]
        out = net(torch.tensor(b["x"]), torch.tensor(b["idx"]))
        loss = ((out - torch.tensor(b["y"])) ** 2).mean()
        grads = torch.autograd.grad(loss, [p for _, p in named])
        return {n: g for (n, _), g in zip(named, grads)}

    history = []
    runner.train(gradients, num_iters=N)
    ckpt = save_checkpoint(path, runner, named, module=net)
    assert "bn.running_mean" in ckpt["state_dict"]  # buffers next to the parameters
    for _ in range(M):
        runner.train(gradients, num_iters=runner.iter + 1)
        history.append({n: p.detach().numpy().copy() for n, p in named})
    return history


def template(dtype):
    b = batches(1, dtype)[0]
    params = FlaxNet().init(jax.random.PRNGKey(0), jnp.asarray(b["x"].transpose(0, 2, 3, 1)),
                            jnp.asarray(b["idx"]))["params"]  # batch_stats: not trained
    return jax.tree.map(lambda x: jnp.zeros(x.shape, dtype), params)


def jax_continue(cfg, resumed, data, params_template):
    tx = oss.build_optimizer(cfg, params_template, steps_per_epoch=SPE)

    stats = jax.tree.map(jnp.zeros_like, {"bn": {"mean": params_template["bn"]["bias"],
                                                 "var": params_template["bn"]["bias"]}})

    def loss(params, b):  # the running statistics do not enter a training-mode output
        out, _ = FlaxNet().apply({"params": params, "batch_stats": stats},
                                 b["x"].transpose(0, 2, 3, 1), b["idx"], mutable=["batch_stats"])
        return ((out - b["y"]) ** 2).mean()

    @jax.jit
    def step(params, state, b):
        updates, state = tx.update(jax.grad(loss)(params, b), state, params)
        return optax.apply_updates(params, updates), state

    params, state, out = resumed.params, resumed.opt_state, []
    names = leaf_names(params)
    for b in data[N:]:
        params, state = step(params, state, jax.tree.map(jnp.asarray, b))
        out.append(dict(zip(names, jax.tree.leaves(params))))
    return out


def as_torch(flax_params: dict) -> dict:
    """{flax name: value} -> {torch name: value in torch's layout}."""
    return {TORCH_NAME(n): oss.flax_to_torch_layout(n, np.asarray(v))
            for n, v in flax_params.items()}


def deviation(ours, ref):
    return max(float(np.max(np.abs(ours[k] - ref[k]) / np.maximum(1.0, np.abs(ref[k]))))
               for k in ref)


def continue_in_flax(name, dtype, tmp_path, tamper=None):
    cfg = config(name)
    data = batches(N + M, dtype)
    path = str(tmp_path / f"{name}_iter_{N}.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the norm layers' settings (NormLayerWarning)
        history = torch_run(cfg, data, dtype, path)
        params_template = template(dtype)
        resumed = oss.from_torch_checkpoint(path, cfg, params_template, steps_per_epoch=SPE,
                                            convert=oss.torch_to_flax_layout)
        if tamper is not None:
            resumed = resumed._replace(opt_state=tamper(resumed.opt_state))
        with jax.default_matmul_precision("highest"):  # no TF32 convolutions on a GPU
            ours = jax_continue(cfg, resumed, data, params_template)
    assert resumed.iteration == N and int(oss.iteration(resumed.opt_state)) == N
    devs = [deviation(as_torch(o), h) for o, h in zip(ours, history)]
    return devs, deviation(history[-1], history[0])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_flax_model_continues_the_torch_run(name, tmp_path):
    devs, moved = continue_in_flax(name, np.float32, tmp_path)
    assert max(devs) <= TOL[np.float32], f"per-iteration deviations {devs}"
    assert moved > 1e-3  # the continued iterations really moved the params


@pytest.mark.parametrize("name", ["sgd_nesterov", "adamw_amsgrad"])
def test_flax_model_continues_the_torch_run_float64(name, tmp_path):
    with jax.enable_x64(True):
        devs, moved = continue_in_flax(name, np.float64, tmp_path)
    assert max(devs) <= TOL[np.float64], f"per-iteration deviations {devs}"
    assert moved > 1e-3


def _transpose_fc1_momentum(state):
    """What loading the square Dense's momentum untransposed did (the old behaviour)."""
    def fix(path, x):
        keys = [getattr(k, "key", getattr(k, "name", None)) for k in path]
        return x.T if "fc1" in keys and "kernel" in keys and "momentum_buffer" in keys else x
    return jax.tree_util.tree_map_with_path(fix, state)


def test_an_untransposed_square_momentum_is_seen(tmp_path):
    """The negative control: the comparison is sharp enough to see the old defect."""
    devs, _ = continue_in_flax("sgd_nesterov", np.float32, tmp_path,
                               tamper=_transpose_fc1_momentum)
    assert max(devs) > 1e-3


def test_a_flax_template_without_convert_is_refused(tmp_path):
    cfg = config("sgd_nesterov")
    path = str(tmp_path / "ckpt.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_run(cfg, batches(N + M, np.float32), np.float32, path)
        with pytest.raises(TorchCheckpointError, match=r"params_template has 3 Flax kernel\(s\) "
                                                       r"\(conv.kernel, fc1.kernel, fc2.kernel\)"
                                                       r".*convert=oss.torch_to_flax_layout"):
            oss.from_torch_checkpoint(path, cfg, template(np.float32), steps_per_epoch=SPE)
        with pytest.raises(oss.ConfigError, match="must take \\(flax_name, value\\)"):
            oss.from_torch_checkpoint(path, cfg, template(np.float32), steps_per_epoch=SPE,
                                      convert=lambda state_dict: state_dict)


# ------------------------------------------------------------------ the layout function


def _flax_out(module, variables, x):
    return np.asarray(module.apply(variables, x))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv_layout_gives_torch_outputs(dims):
    """Conv1d/2d/3d (grouped) weights converted give the torch layer's outputs."""
    torch.manual_seed(dims)
    conv = getattr(torch.nn, f"Conv{dims}d")(4, 6, 3, groups=2, padding=1).double()
    x = np.random.default_rng(dims).normal(size=(2, 4) + (5,) * dims)
    ref = conv(torch.tensor(x)).detach().numpy()
    module = nn.Conv(6, (3,) * dims, padding=1, feature_group_count=2)
    variables = {"params": {
        "kernel": oss.torch_to_flax_layout("params.kernel", conv.weight),
        "bias": oss.torch_to_flax_layout("params.bias", conv.bias)}}
    channels_last = (0, *range(2, dims + 2), 1)
    with jax.enable_x64(True):
        ours = _flax_out(module, variables, x.transpose(channels_last))
    back = tuple(np.argsort(channels_last))
    np.testing.assert_allclose(ours.transpose(back), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(
        oss.flax_to_torch_layout("kernel", variables["params"]["kernel"]),
        conv.weight.detach().numpy())


def test_dense_norm_and_embedding_layouts_give_torch_outputs():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5))
    linear, layer_norm = torch.nn.Linear(5, 5).double(), torch.nn.LayerNorm(5).double()
    embed = torch.nn.Embedding(7, 5).double()
    torch.nn.init.normal_(layer_norm.weight)
    with jax.enable_x64(True):
        conv = lambda n, t: oss.torch_to_flax_layout(n, t)  # noqa: E731
        dense = _flax_out(nn.Dense(5), {"params": {"kernel": conv("kernel", linear.weight),
                                                   "bias": conv("bias", linear.bias)}}, x)
        norm = _flax_out(nn.LayerNorm(epsilon=1e-5),
                         {"params": {"scale": conv("scale", layer_norm.weight),
                                     "bias": conv("bias", layer_norm.bias)}}, x)
        idx = np.array([0, 6, 3])
        emb = _flax_out(nn.Embed(7, 5), {"params": {
            "embedding": conv("embedding", embed.weight)}}, idx)
    np.testing.assert_allclose(dense, linear(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(norm, layer_norm(torch.tensor(x)).detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_array_equal(emb, embed(torch.tensor(idx)).detach().numpy())


@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=5),
       leaf=st.sampled_from(["kernel", "bias", "scale", "embedding", "mean", "cls_token"]))
def test_the_layout_round_trip_is_exact(shape, leaf):
    value = np.random.default_rng(len(shape)).normal(size=shape)
    name = f"params.block_0.layer.{leaf}"
    flax = oss.torch_to_flax_layout(name, torch.tensor(value))
    np.testing.assert_array_equal(oss.flax_to_torch_layout(name, flax), value)
    if leaf == "kernel" and len(shape) >= 2:  # (O, I, *spatial) -> (*spatial, I, O)
        assert flax.shape == (*shape[2:], shape[1], shape[0])
    else:
        assert flax.shape == tuple(shape)
