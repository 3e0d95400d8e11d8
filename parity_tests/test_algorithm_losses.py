"""The losses of the training models against torch implementations written here.

Each reference follows MMSelfSup 0.11's formula with torch operations (its own
loops, ``F.normalize``, ``nn.BatchNorm1d``, ``nn.PixelShuffle``, ``nn.Unfold``,
``F.cross_entropy``) and shares no code with ``optax_selfsup.models``. Values and
gradients are compared in float64 at a few random inputs.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from optax_selfsup import models
from optax_selfsup.models import losses
from optax_selfsup.models.simmim import pixel_shuffle
from optax_selfsup.models.swin import relative_position_index, shifted_window_mask

SEEDS = [0, 1, 2]


def _t(x):
    return torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=True)


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b.detach().numpy()
                                                     if hasattr(b, "detach") else b),
                               rtol=tol, atol=tol)


def _grads(fn, *arrays):
    with jax.enable_x64(True):
        args = [jnp.asarray(a, jnp.float64) for a in arrays]
        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(args))))(*args)
        return float(value), [np.asarray(g) for g in grads]


# ---- MoCo ---------------------------------------------------------------------------------

def _torch_moco(q, k, queue, temperature):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1).detach()
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
    l_neg = torch.einsum("nc,ck->nk", q, queue.detach())
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("temperature", [0.07, 0.2])
def test_moco_infonce_matches_torch(seed, temperature):
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    queue = rng.normal(size=(8, 24))
    queue /= np.linalg.norm(queue, axis=0)
    value, (gq, gk) = _grads(lambda a, b: losses.moco_loss(
        losses.l2_normalize(a), losses.l2_normalize(b), jnp.asarray(queue), temperature), q, k)
    tq, tk = _t(q), _t(k)
    ref = _torch_moco(tq, tk, torch.tensor(queue), temperature)
    ref.backward()
    _close(value, ref)
    _close(gq, tq.grad)
    assert tk.grad is None or not tk.grad.any()
    assert not gk.any()  # keys get no gradient


def test_moco_queue_is_a_ring_written_batch_by_batch():
    """Upstream: ``queue[:, ptr:ptr+N] = keys.T``; ``ptr = (ptr + N) % K`` (K % N == 0)."""
    rng = np.random.default_rng(0)
    queue = rng.normal(size=(4, 12))
    ref, ptr_ref = torch.tensor(queue), 0
    q, ptr = jnp.asarray(queue), jnp.zeros((), jnp.int32)
    with jax.enable_x64(True):
        q = jnp.asarray(queue, jnp.float64)
        for _ in range(5):
            keys = rng.normal(size=(3, 4))
            q, ptr = losses.enqueue(q, ptr, jnp.asarray(keys))
            ref[:, ptr_ref:ptr_ref + 3] = torch.tensor(keys).T
            ptr_ref = (ptr_ref + 3) % 12
            np.testing.assert_array_equal(np.asarray(q), ref.numpy())
            assert int(ptr) == ptr_ref


def test_moco_step_moves_the_key_encoder_then_enqueues_its_keys():
    module, params, state = models.init_model("mocov2_resnet", seed=0, batch_size=4)
    module = module.clone(momentum=0.9)
    rng = np.random.default_rng(1)
    # a key encoder that differs from the query encoder, so the momentum step shows
    state = dict(state, key=dict(state["key"], params=jax.tree.map(
        lambda x: x + 0.1 * rng.normal(size=x.shape).astype(np.float32), state["key"]["params"])))
    views = rng.normal(size=(4, 2, 16, 16, 3)).astype(np.float32)
    loss, new = jax.jit(models.moco_loss_fn, static_argnums=0)(module, params, state,
                                                               {"views": views})
    apply = jax.jit(lambda p, s, x: module.apply({"params": p, "batch_stats": s}, x,
                                                 mutable=["batch_stats"])[0])
    expected_key = jax.tree.map(lambda k, p: 0.9 * np.asarray(k) + 0.1 * np.asarray(p),
                                state["key"]["params"], params)
    for a, b in zip(jax.tree.leaves(new["key"]["params"]), jax.tree.leaves(expected_key)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6, atol=1e-7)
    # the keys: the moved key encoder on view 2, L2-normalised, in columns 0..3
    k = apply(new["key"]["params"], state["key"]["batch_stats"], views[:, 1])
    k = np.asarray(k) / np.linalg.norm(np.asarray(k), axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(new["queue"])[:, :4], k.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(new["queue"])[:, 4:],
                                  np.asarray(state["queue"])[:, 4:])
    assert int(new["queue_ptr"]) == 4
    # the loss: q from the query encoder on view 1 against those keys and the OLD queue
    q = apply(params, state["batch_stats"], views[:, 0])
    ref = _torch_moco(torch.tensor(np.asarray(q), dtype=torch.float64),
                      torch.tensor(k, dtype=torch.float64),
                      torch.tensor(np.asarray(state["queue"]), dtype=torch.float64), 0.2)
    np.testing.assert_allclose(float(loss), float(ref), rtol=1e-5)


# ---- SwAV -----------------------------------------------------------------------------------

def _torch_sinkhorn(out, iterations, epsilon):
    with torch.no_grad():
        q = torch.exp(out / epsilon).t()
        b, k = q.shape[1], q.shape[0]
        q /= torch.sum(q)
        for _ in range(iterations):
            u = torch.sum(q, dim=1, keepdim=True)
            if len(torch.nonzero(u == 0)) > 0:
                q += 1e-12
                u = torch.sum(q, dim=1, keepdim=True)
            q /= u
            q /= k
            q /= torch.sum(q, dim=0, keepdim=True)
            q /= b
        q *= b
        return q.t()


def _torch_swav(output, num_crops, crops_for_assign, temperature, epsilon):
    bs = output.shape[0] // sum(num_crops)
    loss = 0
    for crop_id in crops_for_assign:
        q = _torch_sinkhorn(output[bs * crop_id:bs * (crop_id + 1)].detach(), 3, epsilon)
        sub = 0
        for v in np.delete(np.arange(np.sum(num_crops)), crop_id):
            x = output[bs * v:bs * (v + 1)] / temperature
            sub -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += sub / (np.sum(num_crops) - 1)
    return loss / len(crops_for_assign)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), batch=st.integers(1, 9), prototypes=st.integers(2, 12),
       spread=st.sampled_from([0.1, 1.0, 3.0]))
def test_sinkhorn_matches_torch(seed, batch, prototypes, spread):
    """Scores as SwAV has them (cosines, |s| <= 1) and wider ones, where exp(s / 0.05)
    spans many orders of magnitude; rows of Q sum to 1 (assignments)."""
    rng = np.random.default_rng(seed)
    scores = np.clip(rng.normal(size=(batch, prototypes)) * spread, -3, 3)
    with jax.enable_x64(True):
        codes = np.asarray(losses.sinkhorn(jnp.asarray(scores, jnp.float64), 3, 0.05))
    ref = _torch_sinkhorn(torch.tensor(scores), 3, 0.05).numpy()
    np.testing.assert_allclose(codes, ref, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(codes.sum(1), 1.0, rtol=1e-9)


def test_sinkhorn_zero_row_guard_matches_torch():
    """A prototype no sample scores for underflows to a zero row; both add 1e-12."""
    scores = np.array([[1.0, -40.0, 0.5], [0.8, -45.0, 0.9]])
    with jax.enable_x64(True):
        codes = np.asarray(losses.sinkhorn(jnp.asarray(scores), 3, 0.05))
    ref = _torch_sinkhorn(torch.tensor(scores), 3, 0.05).numpy()
    assert np.all(np.isfinite(codes))
    np.testing.assert_allclose(codes, ref, rtol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num_crops", [(2,), (2, 6), (2, 3)])
def test_swav_loss_matches_torch(seed, num_crops):
    rng = np.random.default_rng(seed)
    b, k = 5, 7
    z = rng.normal(size=(sum(num_crops) * b, 4))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    protos = rng.normal(size=(k, 4))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    scores = z @ protos.T
    value, (g,) = _grads(lambda s: losses.swav_loss(s, num_crops, (0, 1), 0.1, 0.05, 3), scores)
    ts = _t(scores)
    ref = _torch_swav(ts, list(num_crops), [0, 1], 0.1, 0.05)
    ref.backward()
    _close(value, ref)
    _close(g, ts.grad)


def test_swav_prototypes_are_normalised_per_prototype():
    """Upstream normalises each row of the (num_prototypes, feat_dim) torch weight."""
    kernel = np.random.default_rng(0).normal(size=(8, 32))  # Flax layout (feat_dim, K)
    params = {"backbone": {}, "head": {"prototypes": {"kernel": jnp.asarray(kernel)}}}
    ref = F.normalize(torch.tensor(kernel.T), dim=1, p=2).numpy().T
    out = np.asarray(models.normalize_prototypes(params)["head"]["prototypes"]["kernel"])
    np.testing.assert_allclose(out, ref, rtol=1e-6)


# ---- SimSiam, BarlowTwins --------------------------------------------------------------------

def test_an_all_zero_row_has_torchs_finite_gradient():
    """A row of zeros (a ReLU closed for one sample) in the normalised losses: torch's norm
    has gradient 0 there, ``jnp.linalg.norm``'s is 0/0 (every gradient became NaN and the
    1.x SimSiam recipe trained on NaN). SimSiam (F.normalize) and SimCLR's
    ``z / (||z|| + 1e-10)`` against torch."""
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(6, 5)) for _ in range(4)]
    arrays[0][2] = 0.0
    value, grads = _grads(losses.simsiam_loss, *arrays)
    p1, p2, z1, z2 = (_t(a) for a in arrays)

    def head(pred, target):
        return -(F.normalize(pred, dim=1) * F.normalize(target.detach(), dim=1)).sum(1).mean()

    ref = 0.5 * (head(p1, z2) + head(p2, z1))
    ref.backward()
    assert np.all(np.isfinite(np.asarray(grads[0])))
    _close(value, ref)
    _close(grads[0], p1.grad)
    z = rng.normal(size=(6, 5))
    z[3] = 0.0
    value, (grad,) = _grads(losses.nt_xent_loss, z)
    zt = _t(z)
    n = zt / (torch.norm(zt, p=2, dim=1, keepdim=True) + 1e-10)
    sim = n @ n.T / 0.1
    sim = sim.masked_fill(torch.eye(6, dtype=torch.bool), float("-inf"))
    partner = torch.arange(6) ^ 1
    ref = F.cross_entropy(sim, partner)
    ref.backward()
    _close(value, ref)
    _close(grad, zt.grad)


@pytest.mark.parametrize("seed", SEEDS)
def test_simsiam_loss_matches_torch(seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(6, 5)) for _ in range(4)]
    value, grads = _grads(losses.simsiam_loss, *arrays)
    p1, p2, z1, z2 = (_t(a) for a in arrays)

    def head(pred, target):
        return -(F.normalize(pred, dim=1) * F.normalize(target.detach(), dim=1)).sum(1).mean()

    ref = 0.5 * (head(p1, z2) + head(p2, z1))
    ref.backward()
    _close(value, ref)
    for g, t in zip(grads[:2], (p1, p2)):
        _close(g, t.grad)
    assert not grads[2].any() and not grads[3].any()  # stop-gradient on the targets


@pytest.mark.parametrize("seed", SEEDS)
def test_barlowtwins_head_matches_torch(seed):
    """``LatentCrossCorrelationHead``: BatchNorm1d(affine=False) in train mode on each
    input, c = bn(a)^T bn(b) / N, on-diagonal (c_ii - 1)^2 + 0.0051 * off-diagonal c_ij^2."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(8, 6)) * 2 + 1, rng.normal(size=(8, 6))
    head = models.siamese.LatentCrossCorrelationHead()

    def fn(x, y):
        variables = head.init(jax.random.PRNGKey(0), x, y)
        out, _ = head.apply(variables, x, y, mutable=["batch_stats"])
        return out

    value, grads = _grads(fn, a, b)
    ta, tb = _t(a), _t(b)
    bn = torch.nn.BatchNorm1d(6, affine=False).double().train()
    c = bn(ta).T @ bn(tb) / 8
    on = (torch.diagonal(c) - 1).pow(2).sum()
    n = c.shape[0]
    off = c.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten().pow(2).sum()
    ref = on + 0.0051 * off
    ref.backward()
    _close(value, ref, 1e-9)
    _close(grads[0], ta.grad, 1e-9)
    _close(grads[1], tb.grad, 1e-9)


# ---- rotation prediction, SimMIM, fine-tuning -----------------------------------------------

def test_rotations_match_mmselfsup_rotate():
    """MMSelfSup's ``rotate`` on a (C, H, W) tensor: identity, flip(transpose(1, 2), [1]),
    flip([1, 2]), flip([1]).transpose(1, 2); labels 0-3 in that order."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
    out = np.asarray(models.rotations(jnp.asarray(images)))
    for n in range(2):
        img = torch.tensor(images[n]).permute(2, 0, 1)
        ref = [img, torch.flip(img.transpose(1, 2), [1]), torch.flip(img, [1, 2]),
               torch.flip(img, [1]).transpose(1, 2)]
        for k in range(4):
            np.testing.assert_array_equal(out[n, k], ref[k].permute(1, 2, 0).numpy())


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_and_label_smoothing_match_torch(seed):
    rng = np.random.default_rng(seed)
    logits, labels = rng.normal(size=(7, 4)) * 3, rng.integers(0, 4, size=7)
    value, (g,) = _grads(lambda x: losses.cross_entropy(x, jnp.asarray(labels)), logits)
    t = _t(logits)
    ref = F.cross_entropy(t, torch.tensor(labels))
    ref.backward()
    _close(value, ref)
    _close(g, t.grad)
    value, (g,) = _grads(lambda x: losses.label_smooth_loss(x, jnp.asarray(labels), 0.1), logits)
    t = _t(logits)
    ref = F.cross_entropy(t, torch.tensor(labels), label_smoothing=0.1)
    ref.backward()
    _close(value, ref)
    _close(g, t.grad)


@pytest.mark.parametrize("seed", SEEDS)
def test_simmim_loss_matches_torch(seed):
    """``SimMIMHead`` on NCHW tensors: mask (N, h, w) repeat_interleave'd by the patch size
    along both axes, unsqueezed to (N, 1, H, W); sum(l1 * mask) / (sum(mask) + 1e-5) / C."""
    rng = np.random.default_rng(seed)
    x, rec = rng.normal(size=(3, 8, 8, 3)), rng.normal(size=(3, 8, 8, 3))
    mask = rng.integers(0, 2, size=(3, 4, 4))
    value, (g,) = _grads(lambda r: losses.simmim_loss(jnp.asarray(x), r, jnp.asarray(mask), 2),
                         rec)
    tx, trec = torch.tensor(x).permute(0, 3, 1, 2), _t(rec)
    m = torch.tensor(mask, dtype=torch.float64).repeat_interleave(2, 1).repeat_interleave(
        2, 2).unsqueeze(1)
    loss_rec = F.l1_loss(tx, trec.permute(0, 3, 1, 2), reduction="none")
    ref = (loss_rec * m).sum() / (m.sum() + 1e-5) / 3
    ref.backward()
    _close(value, ref)
    _close(g, trec.grad)


def test_pixel_shuffle_matches_torch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 3, 3 * 16)).astype(np.float32)
    ref = torch.nn.PixelShuffle(4)(torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    np.testing.assert_array_equal(np.asarray(pixel_shuffle(jnp.asarray(x), 4)), ref.numpy())


def test_simmim_mask_is_upstreams_block_mask():
    """``SimMIMMaskGenerator``: ceil(count * 0.6) of the mask patches, each repeated to
    (mask_patch / model_patch)^2 model patches."""
    mask = np.asarray(models.simmim_mask(jax.random.PRNGKey(3), 50, 16, 4, 2, 0.6))
    assert mask.shape == (50, 8, 8) and set(np.unique(mask)) == {0, 1}
    blocks = mask.reshape(50, 4, 2, 4, 2)
    assert np.all(blocks == blocks[:, :, :1, :, :1])  # constant on 2x2 blocks
    assert np.all(blocks[:, :, 0, :, 0].sum((1, 2)) == math.ceil(16 * 0.6))
    assert len({m.tobytes() for m in mask}) > 40  # drawn per image


def test_swin_window_helpers_match_independent_constructions():
    """The relative position index as Swin's paper code builds it (coordinate differences,
    shifted and scaled), mmcls's flip included; the shifted-window mask against a direct
    region-id comparison of the rolled map."""
    w = 4
    coords = np.stack(np.meshgrid(np.arange(w), np.arange(w), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (w - 1)
    swin_index = rel[..., 0] * (2 * w - 1) + rel[..., 1]
    # mmcls's double_step_seq + flip(1) is the same table
    np.testing.assert_array_equal(relative_position_index(w), swin_index)
    h = 8
    region = np.zeros((h, h), int)
    edges = [0, h - w, h - w // 2, h]
    for i in range(3):
        for j in range(3):
            region[edges[i]:edges[i + 1], edges[j]:edges[j + 1]] = 3 * i + j
    mask = shifted_window_mask(h, h, w, w // 2)
    for win, (r, c) in enumerate([(r, c) for r in range(0, h, w) for c in range(0, h, w)]):
        ids = region[r:r + w, c:c + w].reshape(-1)
        np.testing.assert_array_equal(mask[win], np.where(ids[None] != ids[:, None], -100.0, 0))


def test_patch_merging_takes_unfold_order():
    """mmcv ``PatchMerging``: ``nn.Unfold(2, stride=2)`` features (channel-major) of each 2x2
    neighbourhood, then LayerNorm and the reduction. With identity norm and reduction
    weights the output is the unfolded features."""
    from optax_selfsup.models.swin import PatchMerging

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    layer = PatchMerging(12)
    variables = layer.init(jax.random.PRNGKey(0), jnp.asarray(x.reshape(2, 16, 3)), (4, 4))
    variables = jax.tree.map(lambda v: v, variables)
    variables["params"]["reduction"]["kernel"] = jnp.eye(12)
    out, hw = layer.apply(variables, jnp.asarray(x.reshape(2, 16, 3)), (4, 4))
    unfolded = torch.nn.Unfold(2, stride=2)(torch.tensor(x).permute(0, 3, 1, 2)).transpose(1, 2)
    ref = F.layer_norm(unfolded, (12,), eps=1e-5)
    assert hw == (2, 2)
    np.testing.assert_allclose(np.asarray(out), ref.numpy(), rtol=1e-5, atol=1e-5)
