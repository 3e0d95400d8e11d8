"""Small SimCLR / BYOL / MAE networks in torch with MMSelfSup 0.11's module names.

The reference side of the twin-model parity tests (``parity_tests/test_twin_models.py``);
it shares no code with ``optax_selfsup``. Parameter names are MMSelfSup's:

- ``SmallResNet``: ``conv1``, ``bn1``, ``layer{s}.{b}.conv1/bn1/conv2/bn2``,
  ``layer{s}.{b}.downsample.0`` (1x1 conv) / ``downsample.1`` (BatchNorm), BasicBlocks,
  3x3 stride-1 stem without max-pool, global average pool at the end;
- ``NonLinearNeck``: ``fc0``, ``bn0`` (BatchNorm1d), ``fc{i}``, ``bn{i}`` (MMSelfSup
  0.11 ``necks/nonlinear_neck.py``);
- BYOL's head: ``head.predictor`` (a NonLinearNeck, ``LatentPredictHead``);
- MAE: ``backbone.patch_embed.projection``, ``backbone.cls_token``,
  ``backbone.pos_embed``, ``backbone.layers.{i}.{ln1,attn.qkv,attn.proj,ln2,
  ffn.layers.0.0,ffn.layers.1}``, ``backbone.ln1``; ``neck.decoder_embed``,
  ``neck.mask_token``, ``neck.decoder_pos_embed``, ``neck.decoder_blocks.{i}.*``,
  ``neck.ln1`` (the decoder norm's registered name), ``neck.decoder_pred``.

Losses follow MMSelfSup's algorithms: SimCLR builds the (2N)x(2N-1) similarity
matrix without its diagonal and picks positives / negatives by index
(``ContrastiveHead``, temperature 0.1); BYOL computes online and target
projections per view and ``2 * (L(q1, t2) + L(q2, t1))``; MAE masks with the
given per-patch noise (argsort: the lowest ``1 - mask_ratio`` are kept) and
takes the per-patch MSE against normalised pixels over the masked patches.

Differences from upstream, all deliberate and mirrored on the JAX side: tiny
widths, BasicBlocks, a stride-1 stem, and trainable (sin-cos initialised)
position embeddings. BYOL's target network is a separate module
(``BYOL.target``, not registered, so ``named_parameters`` lists only what the
optimizer trains: upstream names those ``online_net.0.*`` / ``online_net.1.*``
and lists the frozen target too).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin, cout, k, stride):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv(cout, cout, 3, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class SmallResNet(nn.Module):
    def __init__(self, widths=(8, 16), blocks=(1, 1), stem_width=8, in_channels=3):
        super().__init__()
        self.conv1 = _conv(in_channels, stem_width, 3, 1)
        self.bn1 = nn.BatchNorm2d(stem_width)
        cin = stem_width
        for s, (width, count) in enumerate(zip(widths, blocks)):
            layer = []
            for b in range(count):
                layer.append(BasicBlock(cin, width, 2 if (s > 0 and b == 0) else 1))
                cin = width
            self.add_module(f"layer{s + 1}", nn.Sequential(*layer))
        self.num_stages = len(widths)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for s in range(self.num_stages):
            x = getattr(self, f"layer{s + 1}")(x)
        return x.mean(dim=(2, 3))


class NonLinearNeck(nn.Module):
    def __init__(self, in_channels, hid_channels, out_channels, num_layers=2, with_bias=False,
                 with_last_bn=True, with_last_bias=False):
        super().__init__()
        self.fc0 = nn.Linear(in_channels, hid_channels, bias=with_bias)
        self.bn0 = nn.BatchNorm1d(hid_channels)
        self.stages = []
        for i in range(1, num_layers):
            last = i == num_layers - 1
            width = out_channels if last else hid_channels
            self.add_module(f"fc{i}", nn.Linear(hid_channels, width,
                                                bias=with_last_bias if last else with_bias))
            bn = None
            if not last or with_last_bn:
                bn = f"bn{i}"
                self.add_module(bn, nn.BatchNorm1d(width))
            self.stages.append((f"fc{i}", bn))

    def forward(self, x):
        x = self.bn0(self.fc0(x))
        for fc, bn in self.stages:
            x = getattr(self, fc)(F.relu(x))
            if bn is not None:
                x = getattr(self, bn)(x)
        return x


class LatentPredictHead(nn.Module):
    def __init__(self, channels, hid_channels):
        super().__init__()
        self.predictor = NonLinearNeck(channels, hid_channels, channels, with_bias=True,
                                       with_last_bn=False)

    def loss(self, online, target):
        pred = F.normalize(self.predictor(online), dim=1)
        target = F.normalize(target.detach(), dim=1)
        return -(pred * target).sum(dim=1).mean()


class SimCLR(nn.Module):
    def __init__(self, widths=(8, 16), hid_channels=16, out_channels=8, temperature=0.1):
        super().__init__()
        self.backbone = SmallResNet(widths)
        self.neck = NonLinearNeck(widths[-1], hid_channels, out_channels)
        self.temperature = temperature

    def loss(self, batch):
        """``batch['views']``: (N, 2, C, H, W); the views of image i are rows 2i, 2i+1."""
        views = batch["views"]
        n = views.shape[0]
        z = self.neck(self.backbone(views.reshape((2 * n,) + views.shape[2:])))
        z = z / (torch.norm(z, p=2, dim=1, keepdim=True) + 1e-10)
        s = z @ z.t()
        off_diagonal = ~torch.eye(2 * n, dtype=torch.bool, device=z.device)
        s = s[off_diagonal].reshape(2 * n, 2 * n - 1)
        # the partner of row 2i (2i+1) and of row 2i+1 (2i) sits in column 2i without the diagonal
        pos_col = torch.arange(n, device=z.device).repeat_interleave(2) * 2
        rows = torch.arange(2 * n, device=z.device)
        positive = s[rows, pos_col].unsqueeze(1)
        neg_mask = torch.ones_like(s, dtype=torch.bool)
        neg_mask[rows, pos_col] = False
        negative = s[neg_mask].reshape(2 * n, 2 * n - 2)
        logits = torch.cat([positive, negative], dim=1) / self.temperature
        labels = torch.zeros(2 * n, dtype=torch.long, device=z.device)
        return F.cross_entropy(logits, labels)


class BYOL(nn.Module):
    def __init__(self, widths=(8, 16), hid_channels=16, out_channels=8):
        super().__init__()
        self.backbone = SmallResNet(widths)
        self.neck = NonLinearNeck(widths[-1], hid_channels, out_channels, with_bias=True,
                                  with_last_bn=False)
        self.head = LatentPredictHead(out_channels, hid_channels)
        self.reset_target()

    def reset_target(self):
        """The target starts as a copy of the online backbone + neck (not a submodule)."""
        target = nn.Sequential(copy.deepcopy(self.backbone), copy.deepcopy(self.neck))
        for p in target.parameters():
            p.requires_grad_(False)
        self.__dict__["target"] = target

    def _apply(self, fn, *args, **kwargs):  # .double() / .to(device) reach the target too
        super()._apply(fn, *args, **kwargs)
        self.target._apply(fn, *args, **kwargs)
        return self

    def _online(self):
        return list(self.backbone.parameters()) + list(self.neck.parameters())

    def loss(self, batch):
        v1, v2 = batch["views"][:, 0], batch["views"][:, 1]
        p1 = self.neck(self.backbone(v1))
        p2 = self.neck(self.backbone(v2))
        with torch.no_grad():
            t1 = self.target(v1)
            t2 = self.target(v2)
        return 2.0 * (self.head.loss(p1, t2) + self.head.loss(p2, t1))

    @torch.no_grad()
    def momentum_update(self, momentum):
        for online, target in zip(self._online(), self.target.parameters()):
            target.data = target.data * momentum + online.data * (1.0 - momentum)


class BYOLHook:
    """MMSelfSup's BYOLHook (priority NORMAL, after the optimizer hook): before iteration
    ``it`` (every ``update_interval``) momentum = end - (end - base)(cos(pi it/max)+1)/2,
    after it the target moves."""

    priority = 50

    def __init__(self, model, base_momentum, end_momentum=1.0, update_interval=1):
        self.model, self.base, self.end = model, base_momentum, end_momentum
        self.k = update_interval
        self.momentum = base_momentum
        self.history = []

    def _every(self, runner):
        return (runner.iter + 1) % self.k == 0

    def before_train_iter(self, runner):
        if self._every(runner):
            self.momentum = self.end - (self.end - self.base) * (
                math.cos(math.pi * runner.iter / float(runner.max_iters)) + 1) / 2

    def after_train_iter(self, runner):
        if self._every(runner):
            self.model.momentum_update(self.momentum)
            self.history.append(self.momentum)

    def before_run(self, runner):
        pass

    def before_train_epoch(self, runner):
        pass


def sincos_table(grid, dims):
    quarter = dims // 4
    omega = 1.0 / 10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    gw, gh = torch.meshgrid(torch.arange(grid, dtype=torch.float64),
                            torch.arange(grid, dtype=torch.float64), indexing="ij")
    out_w = torch.einsum("m,d->md", gw.flatten(), omega)
    out_h = torch.einsum("m,d->md", gh.flatten(), omega)
    table = torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)
    return torch.cat([torch.zeros(1, dims, dtype=torch.float64), table])[None].float()


class MultiheadAttention(nn.Module):
    def __init__(self, dims, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dims, 3 * dims)
        self.proj = nn.Linear(dims, dims)

    def forward(self, x):
        b, n, c = x.shape
        head = c // self.num_heads
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * head ** -0.5).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class FFN(nn.Module):
    def __init__(self, dims, hidden):
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(dims, hidden), nn.GELU(),
                                                  nn.Dropout(0.0)),
                                    nn.Linear(hidden, dims), nn.Dropout(0.0))

    def forward(self, x, identity):
        return identity + self.layers(x)  # mmcv FFN adds its identity


class TransformerEncoderLayer(nn.Module):
    def __init__(self, dims, num_heads, hidden):
        super().__init__()
        self.ln1 = nn.LayerNorm(dims, eps=1e-6)
        self.attn = MultiheadAttention(dims, num_heads)
        self.ln2 = nn.LayerNorm(dims, eps=1e-6)
        self.ffn = FFN(dims, hidden)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return self.ffn(self.ln2(x), identity=x)


class PatchEmbed(nn.Module):
    def __init__(self, in_channels, dims, patch):
        super().__init__()
        self.projection = nn.Conv2d(in_channels, dims, patch, stride=patch)

    def forward(self, x):
        return self.projection(x).flatten(2).transpose(1, 2)


class MAEViT(nn.Module):
    def __init__(self, image_size=16, patch_size=4, dims=16, depth=2, num_heads=2, mlp_ratio=4,
                 mask_ratio=0.75, in_channels=3):
        super().__init__()
        grid = image_size // patch_size
        self.patch_embed = PatchEmbed(in_channels, dims, patch_size)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dims) * 0.02)
        self.pos_embed = nn.Parameter(sincos_table(grid, dims))
        self.layers = nn.ModuleList(TransformerEncoderLayer(dims, num_heads, mlp_ratio * dims)
                                    for _ in range(depth))
        self.ln1 = nn.LayerNorm(dims, eps=1e-6)
        self.mask_ratio = mask_ratio

    def forward(self, x, noise):
        b = x.shape[0]
        x = self.patch_embed(x) + self.pos_embed[:, 1:, :]
        _, length, dims = x.shape
        keep = int(length * (1 - self.mask_ratio))
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        x = torch.gather(x, 1, ids_shuffle[:, :keep].unsqueeze(-1).repeat(1, 1, dims))
        mask = torch.ones(b, length, dtype=x.dtype, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(b, -1, -1)
        x = torch.cat([cls, x], dim=1)
        for layer in self.layers:
            x = layer(x)
        return self.ln1(x), mask, ids_restore


class MAEPretrainDecoder(nn.Module):
    def __init__(self, num_patches=16, patch_size=4, in_chans=3, embed_dim=16, dims=8, depth=1,
                 num_heads=2, mlp_ratio=4):
        super().__init__()
        self.decoder_embed = nn.Linear(embed_dim, dims)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dims) * 0.02)
        self.decoder_pos_embed = nn.Parameter(sincos_table(int(round(num_patches ** 0.5)), dims))
        self.decoder_blocks = nn.ModuleList(
            TransformerEncoderLayer(dims, num_heads, mlp_ratio * dims) for _ in range(depth))
        self.ln1 = nn.LayerNorm(dims, eps=1e-6)
        self.decoder_pred = nn.Linear(dims, patch_size ** 2 * in_chans)

    def forward(self, x, ids_restore):
        x = self.decoder_embed(x)
        masked = ids_restore.shape[1] + 1 - x.shape[1]
        tokens = torch.cat([x[:, 1:, :], self.mask_token.repeat(x.shape[0], masked, 1)], dim=1)
        tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], tokens], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.ln1(x))[:, 1:, :]


class MAE(nn.Module):
    def __init__(self, image_size=16, patch_size=4, dims=16, depth=2, decoder_dims=8,
                 decoder_depth=1, num_heads=2, mask_ratio=0.75, norm_pix=True):
        super().__init__()
        self.backbone = MAEViT(image_size, patch_size, dims, depth, num_heads,
                               mask_ratio=mask_ratio)
        self.neck = MAEPretrainDecoder((image_size // patch_size) ** 2, patch_size, 3, dims,
                                       decoder_dims, decoder_depth, num_heads)
        self.patch_size, self.norm_pix = patch_size, norm_pix

    def patchify(self, imgs):
        p = self.patch_size
        n, c, h, w = imgs.shape
        x = imgs.reshape(n, c, h // p, p, w // p, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(n, (h // p) * (w // p), p * p * c)

    def loss(self, batch):
        """``batch['images']``: (N, C, H, W); ``batch['noise']``: (N, L)."""
        imgs = batch["images"]
        latent, mask, ids_restore = self.backbone(imgs, batch["noise"])
        pred = self.neck(latent, ids_restore)
        target = self.patchify(imgs)
        if self.norm_pix:
            target = (target - target.mean(dim=-1, keepdim=True)) / (
                target.var(dim=-1, keepdim=True) + 1.0e-6) ** 0.5
        per_patch = ((pred - target) ** 2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()


MODELS = {"simclr_resnet": SimCLR, "byol_resnet": BYOL, "mae_vit": MAE}


def trainable_named_parameters(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]
