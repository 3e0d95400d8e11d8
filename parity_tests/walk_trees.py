"""Small parameter trees named like the models of the real configs (``test_config_walk.py``).

A tree is a :class:`Tree`: torch names in registration order, tiny shapes that keep what the
parameter-wise rules read (the rank, 1-d norms and biases, a depthwise weight's
``shape[1] == 1``), and which names belong to a norm layer / a depthwise conv (the torch
module types) or are frozen (``requires_grad=False``: not handed to the optimizer).

* MMEngine configs: the real MMPretrain 1.2.0 model of the config where
  ``data/mmengine_paramwise.json.gz`` recorded it (``tools/mmpretrain_trees.py``), else a
  generator per backbone family below, written after MMPretrain 1.2.0 / MMSelfSup 1.0.0's
  module names (the models MMPretrain 1.2.0 cannot build: MMSelfSup 1.0's own algorithms).
* MMSelfSup 0.11 configs: generators after MMSelfSup 0.11's module names (``online_net.0``,
  ``encoder_q.0``, ``encoder.0``, ``base_encoder.0`` for the wrapped backbones, ``fc0`` /
  ``bn0`` necks, ``head.prototypes``, ...). Transformers keep every layer there: the 0.x
  layer-decay constructor counts the layers from the names.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from typing import NamedTuple

from upstream_data import DATA_DIR

RECORDED = DATA_DIR / "mmengine_paramwise.json.gz"
W, B, N = (2, 2), (2,), "norm"  # linear weight, bias / 1-d, a norm layer's kind


class Tree(NamedTuple):
    names: tuple
    shapes: tuple
    norm: frozenset
    dwconv: frozenset
    frozen: frozenset
    source: str

    def trainable(self):
        return [(n, s) for n, s in zip(self.names, self.shapes) if n not in self.frozen]


def make(rows, source) -> Tree:
    """``rows``: ``(name, shape, kind)`` with kind '' / 'norm' / 'dw' / 'frozen'."""
    rows = list(rows)
    return Tree(tuple(r[0] for r in rows), tuple(tuple(r[1]) for r in rows),
                frozenset(r[0] for r in rows if r[2] == N),
                frozenset(r[0] for r in rows if r[2] == "dw"),
                frozenset(r[0] for r in rows if r[2] == "frozen"), source)


@cache
def recorded() -> dict:
    return json.loads(gzip.decompress(RECORDED.read_bytes()))


def recorded_tree(tid: str) -> Tree:
    t = recorded()["trees"][tid]
    names = t["names"]
    return Tree(tuple(names), tuple(tuple(s) for s in t["shapes"]),
                frozenset(names[i] for i in t["norm"]), frozenset(names[i] for i in t["dwconv"]),
                frozenset(names[i] for i in t["frozen"]), f"recorded {tid}")


# -- building blocks ---------------------------------------------------------------------------

def lin(p, bias=True, kind=""):
    return [(p + ".weight", W, kind)] + ([(p + ".bias", B, kind)] if bias else [])


def norm(p, kind=N):
    return [(p + ".weight", B, kind), (p + ".bias", B, kind)]


def conv(p, bias=False, kind=""):
    return [(p + ".weight", (2, 2, 1, 1), kind)] + ([(p + ".bias", B, kind)] if bias else [])


def frozen(rows):
    return [(n, s, "frozen") for n, s, _ in rows]


def kept(n):
    """Block indices kept of ``n`` (the first two and the last, as the recorded trees)."""
    return sorted({0, 1, n - 1} & set(range(n))) if n > 3 else list(range(n))


STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
          152: (3, 8, 36, 3)}


def resnet(p="backbone.", depth=50, stages=4, all_blocks=False, stem="conv1"):
    """MMPretrain / MMSelfSup ResNet: ``conv1``, ``bn1``, ``layer{s}.{b}.conv{k}`` /
    ``bn{k}``, ``layer{s}.0.downsample.0`` (conv) / ``.1`` (BatchNorm)."""
    convs = 2 if depth < 50 else 3
    rows = (conv(p + "stem.0") + norm(p + "stem.1") if stem == "stem"
            else conv(p + "conv1") + norm(p + "bn1"))
    for s, n in enumerate(STAGES.get(depth, STAGES[50])[:stages], 1):
        for b in (range(n) if all_blocks else kept(n)):
            q = f"{p}layer{s}.{b}."
            for k in range(1, convs + 1):
                rows += conv(q + f"conv{k}") + norm(q + f"bn{k}")
            if b == 0 and (s > 1 or depth >= 50):
                rows += conv(q + "downsample.0") + norm(q + "downsample.1")
    return rows


def nonlinear_neck(p, layers=2, bias=False, last_bn=True):
    """MMSelfSup's NonLinearNeck: ``fc0``, ``bn0``, ``fc1``, ``bn1``, ..."""
    rows = []
    for i in range(layers):
        rows += lin(f"{p}fc{i}", bias=bias)
        if i < layers - 1 or last_bn:
            rows += norm(f"{p}bn{i}")
    return rows


def vit_layer(q, qv_bias=False, gamma=False, ln=("ln1", "ln2")):
    rows = norm(q + ln[0]) + lin(q + "attn.qkv", bias=not qv_bias)
    if qv_bias:
        rows += [(q + "attn.q_bias", B, ""), (q + "attn.v_bias", B, "")]
    rows += lin(q + "attn.proj") + norm(q + ln[1]) + lin(q + "ffn.layers.0.0") + \
        lin(q + "ffn.layers.1")
    if gamma:
        rows += [(q + "gamma_1", B, ""), (q + "gamma_2", B, "")]
    return rows


def vit(p="backbone.", layers=12, all_layers=False, cls=True, pos_frozen=False, mask=False,
        patch_frozen=False, final="ln1", **layer):
    """ViT / MAE / BEiT / CAE backbones: tokens, ``patch_embed.projection``,
    ``layers.{i}.{ln1,attn,ln2,ffn}``, a final norm."""
    rows = [(p + "cls_token", (1, 1, 2), "")] if cls else []
    rows += [(p + "pos_embed", (1, 2, 2), "frozen" if pos_frozen else "")]
    if mask:
        rows += [(p + "mask_token", (1, 1, 2), "")]
    rows += conv(p + "patch_embed.projection", bias=True, kind="frozen" if patch_frozen else "")
    for i in (range(layers) if all_layers else kept(layers)):
        rows += vit_layer(f"{p}layers.{i}.", **layer)
    return rows + (norm(p + final) if final else [])


def mae_decoder(p="neck.", layers=8):
    rows = [(p + "mask_token", (1, 1, 2), ""), (p + "decoder_pos_embed", (1, 2, 2), "frozen")]
    rows += lin(p + "decoder_embed")
    for i in kept(layers):
        rows += vit_layer(f"{p}decoder_blocks.{i}.")
    return rows + norm(p + "ln1") + lin(p + "decoder_pred")


def swin(p="backbone.", depths=(2, 2, 18, 2), all_blocks=False, mask=False, abs_pos=False):
    """Swin / SimMIM-Swin: ``patch_embed``, ``stages.{s}.blocks.{b}.{norm1,attn.w_msa,norm2,
    ffn}``, ``stages.{s}.downsample.{norm,reduction}``, ``norm3``."""
    rows = [(p + "mask_token", (1, 1, 2), "")] if mask else []
    rows += [(p + "absolute_pos_embed", (1, 2, 2), "")] if abs_pos else []
    rows += conv(p + "patch_embed.projection", bias=True) + norm(p + "patch_embed.norm")
    for s, d in enumerate(depths):
        for b in (range(d) if all_blocks else kept(d)):
            q = f"{p}stages.{s}.blocks.{b}."
            rows += norm(q + "norm1") + [(q + "attn.w_msa.relative_position_bias_table", W, "")]
            rows += lin(q + "attn.w_msa.qkv") + lin(q + "attn.w_msa.proj") + norm(q + "norm2")
            rows += lin(q + "ffn.layers.0.0") + lin(q + "ffn.layers.1")
        if s < len(depths) - 1:
            rows += norm(f"{p}stages.{s}.downsample.norm") + \
                lin(f"{p}stages.{s}.downsample.reduction", bias=False)
    return rows + norm(p + "norm3")


def mixmim(p="backbone.", depths=(2, 2, 8, 2)):
    rows = conv(p + "patch_embed.projection", bias=True) + \
        [(p + "absolute_pos_embed", (1, 2, 2), "frozen")]
    for i, d in enumerate(depths):
        for b in kept(d):
            q = f"{p}layers.{i}.blocks.{b}."
            rows += norm(q + "norm1") + lin(q + "attn.qkv") + \
                [(q + "attn.relative_position_bias_table", W, "")] + lin(q + "attn.proj")
            rows += norm(q + "norm2") + lin(q + "ffn.layers.0.0") + lin(q + "ffn.layers.1")
        if i < len(depths) - 1:
            rows += norm(f"{p}layers.{i}.downsample.norm") + \
                lin(f"{p}layers.{i}.downsample.reduction", bias=False)
    return rows + norm(p + "norm")


def generic(p="backbone."):
    """A backbone family the walk has no generator for (single-group configs only): a stem
    ConvModule and one block."""
    return conv(p + "stem.conv") + norm(p + "stem.bn") + conv(p + "layers.0.0.conv") + \
        norm(p + "layers.0.0.bn") + [(p + "layers.0.0.dw.weight", (2, 1, 2, 2), "dw")]


# -- MMEngine configs (MMPretrain 1.2.0 / MMSelfSup 1.0.0 names) ---------------------------------

VIT = ("VisionTransformer", "MAEViT", "MILANViT", "BEiTViT", "BEiTPretrainViT", "CAEViT",
       "CAEPretrainViT", "MoCoV3ViT", "MaskFeatViT", "BEiT")
SWIN = ("SwinTransformer", "SimMIMSwinTransformer")
MIXMIM = ("MixMIMTransformer", "MixMIMTransformerPretrain", "MixMIMPretrainTransformer")
RESNETS = ("ResNet", "ResNetSobel", "ResNetV1c", "ResNetV1d", "ResNet_CIFAR", "ResNeXt",
           "SEResNet", "SEResNeXt", "Res2Net")
def cae_neck(p):
    q = p + "regressors.0."
    rows = [(p + "mask_token", (1, 1, 2), "")] + norm(q + "norm1_q_cross") + \
        norm(q + "norm1_k_cross") + lin(q + "cross_attn.q", False)
    rows += [(q + "cross_attn.q_bias", B, "")] + lin(q + "cross_attn.proj")
    rows += [(q + "gamma_1_cross", B, "")] + vit_layer(p + "decoders.0.", gamma=True)
    return rows + norm(p + "norm_regressor") + norm(p + "norm_decoder") + lin(p + "head")


NECKS = {
    "NonLinearNeck": lambda p: nonlinear_neck(p, 2),
    "MoCoV2Neck": lambda p: lin(p + "mlp.0") + lin(p + "mlp.2"),
    "LinearNeck": lambda p: lin(p + "fc"),
    "DenseCLNeck": lambda p: lin(p + "mlp.0") + lin(p + "mlp.2") + conv(p + "mlp2.0", True) +
    conv(p + "mlp2.2", True),
    "SwAVNeck": lambda p: lin(p + "projection_neck.0") + norm(p + "projection_neck.1") +
    lin(p + "projection_neck.3"),
    "ODCNeck": lambda p: lin(p + "fc0") + norm(p + "bn0"),
    "RelativeLocNeck": lambda p: lin(p + "fc") + norm(p + "bn"),
    "MAEPretrainDecoder": lambda p: mae_decoder(p),
    "MILANPretrainDecoder": lambda p: mae_decoder(p),
    "SimMIMLinearDecoder": lambda p: conv(p + "decoder.0", True),
    "SimMIMNeck": lambda p: conv(p + "decoder.0", True),
    "MixMIMPretrainDecoder": lambda p: [(p + "mask_token", (1, 1, 2), ""),
                                        (p + "decoder_pos_embed", (1, 2, 2), "frozen")] +
    lin(p + "decoder_embed") + vit_layer(p + "decoder_blocks.0.", ln=("norm1", "norm2")) +
    norm(p + "decoder_norm") + lin(p + "decoder_pred"),
    "CAENeck": lambda p: cae_neck(p),
    "BEiTV2Neck": lambda p: vit_layer(p + "patch_aggregation.0.", qv_bias=True, gamma=True) +
    norm(p + "norm"),
}
HEADS = {
    "LatentPredictHead": lambda p: nonlinear_neck(p + "predictor.", 2),
    "MoCoV3Head": lambda p: nonlinear_neck(p + "predictor.", 2),
    "SwAVHead": lambda p: [(p + "loss_module.prototypes.weight", W, "")],
    "ClsHead": lambda p: lin(p + "fc_cls"),
    "VisionTransformerClsHead": lambda p: lin(p + "layers.head"),
    "BEiTV1Head": lambda p: lin(p + "cls_head"),
    "BEiTV2Head": lambda p: lin(p + "cls_head"),
    "MaskFeatPretrainHead": lambda p: lin(p + "fc"),
    "LinearClsHead": lambda p: lin(p + "fc"),
}
NO_PARAMS = ("ContrastiveHead", "LatentCrossCorrelationHead", "MAEPretrainHead", "SimMIMHead",
             "CAEHead", "MILANPretrainHead", "PixMIMHead", "AvgPool2dNeck",
             "GlobalAveragePooling", "MixMIMPretrainHead", None)


def arch_facts(btype, backbone, default):
    from optax_selfsup.paramwise.mmpretrain_archs import BACKBONES

    entry = BACKBONES.get(btype)
    arch = backbone.get("arch")
    if entry is None or arch is None:
        return default
    arch = arch.lower() if isinstance(arch, str) and entry["lowercases"] else arch
    facts = entry["archs"].get(arch, default)
    return default if isinstance(facts, str) else facts


def _part(table, kind, p):
    kind = (kind or "").rpartition(".")[2] or None
    if kind in table:
        return table[kind](p)
    return [] if kind in NO_PARAMS else lin(p + "fc")


def _listed(part):
    return part[0] if isinstance(part, list) and part else (part or {})


def backbone_rows(btype, backbone):
    if btype in RESNETS:
        return resnet(depth=backbone.get("depth", 50),
                      stem="stem" if btype in ("ResNetV1c", "ResNetV1d") else "conv1"), "resnet"
    if btype in VIT:
        layers = arch_facts(btype, backbone, 12)
        beit = btype.startswith(("BEiT", "CAE"))
        mae = btype in ("MAEViT", "MILANViT", "CAEViT", "CAEPretrainViT", "MoCoV3ViT")
        return vit(layers=layers, qv_bias=beit, gamma=beit, mask=btype.endswith(
            ("PretrainViT", "MaskFeatViT")) or btype == "BEiTViT", pos_frozen=mae,
            patch_frozen=btype == "MoCoV3ViT"), "vit"
    if btype in SWIN:
        depths = arch_facts(btype, backbone, (2, 2, 18, 2))
        return swin(depths=depths, mask=btype.startswith("SimMIM")), "swin"
    if btype in MIXMIM:
        return mixmim(depths=arch_facts("MixMIMTransformer", backbone, (2, 2, 18, 2))), "mixmim"
    return generic(), "generic"


def generated_1x(model: dict | None, hint: str = "") -> Tree:
    """A tree for an MMEngine config's ``model`` facts (``upstream_views.json``); a base
    schedule file without a model gets the backbone its file name names."""
    if not model:
        name = hint.rpartition("/")[2].lower()
        btype = ("SwinTransformer" if "swin" in name else "VisionTransformer"
                 if any(k in name for k in ("vit", "adamw", "conformer", "levit", "hivit"))
                 else "ResNet")
        rows, family = backbone_rows(btype, {"arch": "b", "depth": 50})
        return make(rows + lin("head.fc"), f"generated {family} (no model: {btype})")
    backbone = _listed(model.get("backbone"))
    rows, family = backbone_rows((backbone.get("type") or "").rpartition(".")[2], backbone)
    rows += _part(NECKS, _listed(model.get("neck")).get("type"), "neck.")
    rows += _part(HEADS, _listed(model.get("head")).get("type"), "head.")
    return make(rows, f"generated {family}")


# -- MMSelfSup 0.11 configs ------------------------------------------------------------------

def _resnet_wrapped(p, neck):
    return resnet(p + "0.") + neck(p + "1.")


def _cls_backbone(backbone: dict):
    btype = backbone.get("type", "").rpartition(".")[2]
    frozen_all = backbone.get("frozen_stages", -1) in (4, 12)
    if btype == "ResNet":
        rows = resnet()
    elif btype == "MIMVisionTransformer":  # fine-tuning: every layer (layer decay counts them)
        rows = vit(all_layers=True, final=None) + norm("backbone.fc_norm")
    else:  # VisionTransformer (MoCo v3 linear probe)
        rows = vit(layers=12, final="ln1")
    return frozen(rows) if frozen_all else rows


def generated_0x(model: dict | None, rel: str = "") -> Tree:
    """MMSelfSup 0.11's module names for a 0.x config's ``model`` facts."""
    model = model or {}
    kind = model.get("type")
    backbone = model.get("backbone") or {}
    neck = (model.get("neck") or {}).get("type")
    head = (model.get("head") or {}).get("type")
    pred = nonlinear_neck("head.predictor.", 2, bias=True, last_bn=False)
    if kind is None:  # a schedule file: a ResNet classifier
        rows = resnet() + lin("head.fc_cls")
    elif kind == "Classification":
        heads = {"MultiClsHead": [r for i in range(5) for r in lin(f"head.fc_cls.{i}")],
                 "MAEFinetuneHead": lin("head.head"), "MaskFeatFinetuneHead": lin("head.head")}
        rows = _cls_backbone(backbone) + heads.get(head, lin("head.fc_cls"))
    elif kind == "MMClsImageClassifierWrapper":
        rows = swin(all_blocks=True) + lin("head.fc")
    elif kind in ("MaskRCNN", "FasterRCNN"):
        rows = resnet(stages=3 if neck is None else 4)
        if neck is None:  # C4: the last stage is the RoI head's shared head, with a norm
            rows += [(n.replace("backbone.layer1", "roi_head.shared_head.layer4"), s, k)
                     for n, s, k in resnet(stages=1) if "layer1" in n]
            rows += norm("roi_head.shared_head.norm")
        else:
            rows += [r for i in range(4) for r in conv(f"neck.lateral_convs.{i}.conv", True)
                     + conv(f"neck.fpn_convs.{i}.conv", True)]
        rows += conv("rpn_head.rpn_conv", True) + conv("rpn_head.rpn_cls", True) + \
            conv("rpn_head.rpn_reg", True) + lin("roi_head.bbox_head.fc_cls") + \
            lin("roi_head.bbox_head.fc_reg")
        if kind == "MaskRCNN":
            rows += conv("roi_head.mask_head.conv_logits", True)
    elif kind == "EncoderDecoder":
        rows = resnet() + conv("decode_head.convs.0.conv") + norm("decode_head.convs.0.bn") + \
            conv("decode_head.conv_seg", True) + conv("auxiliary_head.convs.0.conv") + \
            norm("auxiliary_head.convs.0.bn") + conv("auxiliary_head.conv_seg", True)
    elif kind == "BYOL":
        neck_rows = lambda p: nonlinear_neck(p, 2, bias=True, last_bn=False)  # noqa: E731
        rows = _resnet_wrapped("online_net.", neck_rows) + \
            frozen(_resnet_wrapped("target_net.", neck_rows)) + pred
    elif kind in ("MoCo", "DenseCL", "InterCLRMoCo"):
        rows = _resnet_wrapped("encoder_q.", NECKS[neck])
        rows += frozen(_resnet_wrapped("encoder_k.", NECKS[neck]))
    elif kind == "SimSiam":
        rows = _resnet_wrapped("encoder.", lambda p: nonlinear_neck(p, 3)) + pred
    elif kind == "MoCoV3":
        rows = vit("base_encoder.0.", pos_frozen=True, patch_frozen=True)
        rows += nonlinear_neck("base_encoder.1.", 3) + nonlinear_neck("head.predictor.", 2)
    elif kind == "SwAV":
        rows = resnet() + NECKS["SwAVNeck"]("neck.") + [("head.prototypes.weight", W, "")]
    elif kind == "MAE":
        rows = vit(pos_frozen=True) + mae_decoder()
    elif kind == "CAE":
        rows = vit(qv_bias=True, gamma=True, pos_frozen=True) + NECKS["CAENeck"]("neck.") + \
            frozen(vit("teacher.", qv_bias=True, gamma=True))
    elif kind == "MaskFeat":
        rows = vit(mask=True) + lin("head.fc")
    elif kind == "SimMIM":
        rows = swin(mask=True) + conv("neck.decoder.0", True)
    elif kind == "BarlowTwins":
        rows = resnet() + nonlinear_neck("neck.", 3, last_bn=False)
    else:  # SimCLR, NPID, ODC, DeepCluster, RelativeLoc, RotationPred
        necks = dict(NECKS, NonLinearNeck=lambda p: nonlinear_neck(p, 2))
        rows = resnet() + (necks[neck]("neck.") if neck in necks else [])
        rows += lin("head.fc_cls") if head == "ClsHead" else []
    return make(rows, f"generated 0.x {kind or 'schedule'}")
