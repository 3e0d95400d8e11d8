"""The demo parameter tree, its random gradients and the parity report.

``DEMO_MODEL`` maps torch names to shapes: a ResNet stem and block with its
downsample, ViT blocks and embeddings, a neck, a predictor, SwAV prototypes and
a zero-initialised tensor. ``draw`` gives its initial values and gradients,
``ParityReport`` what a parity run measured; both generations' runs
(``demo.run_parity``, ``demo_mmengine.run_parity_mmengine``) share them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

DEMO_MODEL = {
    "backbone.conv1.weight": (8, 3, 3, 3),
    "backbone.bn1.weight": (8,),
    "backbone.bn1.bias": (8,),
    "backbone.layer1.0.conv1.weight": (8, 8, 3, 3),
    "backbone.layer1.0.bn1.weight": (8,),
    "backbone.layer1.0.bn1.bias": (8,),
    "backbone.layer1.0.downsample.0.weight": (8, 8, 1, 1),
    "backbone.layer1.0.downsample.1.weight": (8,),
    "backbone.layer1.0.downsample.1.bias": (8,),
    "backbone.patch_embed.projection.weight": (6, 3, 2, 2),
    "backbone.pos_embed": (1, 5, 6),
    "backbone.cls_token": (1, 1, 6),
    "backbone.mask_token": (1, 1, 6),
    "backbone.layers.0.ln1.weight": (6,),
    "backbone.layers.0.ln1.bias": (6,),
    "backbone.layers.0.attn.qkv.weight": (18, 6),
    "backbone.layers.0.attn.qkv.bias": (18,),
    "backbone.layers.1.ln1.weight": (6,),
    "backbone.layers.1.attn.qkv.weight": (18, 6),
    "backbone.ln1.weight": (6,),
    "neck.mlp.0.weight": (16, 8),
    "neck.mlp.0.bias": (16,),
    "neck.mlp.2.weight": (4, 16),
    "neck.zero_init.weight": (4, 4),
    "head.predictor.0.weight": (4, 4),
    "head.predictor.0.bias": (4,),
    "prototypes.weight": (10, 4),
}

# iterations a compressed run aims at: the whole schedule in well under a minute on 2 cores
COMPRESSED_ITERS = 600
# an uncompressed run (explicit steps_per_epoch, IterBasedRunner) is cut here unless asked
DEFAULT_MAX_ITERS = 2000


def compressed_steps_per_epoch(cfg: dict) -> int | None:
    """Steps per epoch that fit the config's whole EpochBasedRunner run in about
    ``COMPRESSED_ITERS`` iterations (at least 2 per epoch, so the within-epoch behaviour
    shows); None for an IterBasedRunner run, whose length the config fixes."""
    runner = cfg.get("runner") or {}
    if not isinstance(runner, dict):
        return None  # Clock.from_runner_config says what is wrong
    if runner.get("type", "EpochBasedRunner") != "EpochBasedRunner" or not runner.get(
            "max_epochs"):
        return None
    return max(2, COMPRESSED_ITERS // int(runner["max_epochs"]))


@dataclasses.dataclass
class ParityReport:
    """What ``run_parity`` measured. Deviations are maxima over the run:
    ``param`` = max |p_ours - p_torch| / max(1, |p_torch|) after the last iteration;
    ``lr`` / ``momentum``: of the values in force at every iteration (what mmcv logs),
    per parameter max_t |ours - torch| / max_t |torch|; momentum None when the
    optimizer has none."""

    param: float
    lr: float
    momentum: float | None
    iters: int  # iterations run
    max_iters: int  # the run's length
    steps_per_epoch: int | None
    compressed: bool  # steps_per_epoch chosen by compressed_steps_per_epoch
    warmup_end: int | None  # first iteration after the lr warmup
    updates: list[int]  # iterations where optax_selfsup applied an update
    ref_updates: list[int]  # ... where the reference called optimizer.step() (fp16:
    # GradScaler skips the call for non-finite gradients, as has_updated is False then)
    weight_decay: float | None = None  # MMEngine configs: as lr, for the weight decay
    generation: str = "mmcv1"  # 'mmcv1' or 'mmengine'
    reference: str = "torch_ref"  # what the numbers were compared with
    notes: list[str] = dataclasses.field(default_factory=list)  # what the reference left out

    @property
    def params_every_iteration(self) -> bool:
        """``param`` is the maximum over every iteration (MMEngine configs), not only after
        the last one."""
        return self.generation == "mmengine"

    @property
    def epochs(self) -> int:
        """Epoch boundaries crossed (epoch starts after the first)."""
        if not self.steps_per_epoch:
            return 0
        return (self.iters - 1) // self.steps_per_epoch

    @property
    def reached_end(self) -> bool:
        return self.iters == self.max_iters


def draw(seed: int, iters: int) -> tuple[dict, dict]:
    """Initial values (normal * 0.5, ``neck.zero_init.weight`` zero) and ``iters`` gradients
    (normal * 0.1, stacked on a leading axis) of ``DEMO_MODEL``, float32."""
    rng = np.random.default_rng(seed)
    values = {k: (rng.normal(size=s) * 0.5).astype(np.float32) for k, s in DEMO_MODEL.items()}
    values["neck.zero_init.weight"][...] = 0.0
    grads = {k: (rng.normal(size=(iters,) + s) * 0.1).astype(np.float32)
             for k, s in DEMO_MODEL.items()}
    return values, grads


def _relative(ours, ref) -> float:
    """max over parameters (columns) of max_t |ours - ref| / max_t |ref|."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    peak = np.maximum(np.max(np.abs(ref), axis=0), 1e-30)
    return float(np.max(np.max(np.abs(ours - ref), axis=0) / peak, initial=0.0))
