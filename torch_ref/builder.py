"""Config -> torch optimizer + mmcv-order hooks (the reference side of ``build_optimizer``)."""

from __future__ import annotations

import copy
import dataclasses

import torch

from .lars import LARS
from .policies import build_schedule_hook

OPTIMIZERS = {name: getattr(torch.optim, name) for name in (
    "SGD", "Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "RMSprop", "Rprop", "ASGD",
    "NAdam", "RAdam")}
OPTIMIZERS["LARS"] = LARS


def register_optimizer(name: str, cls) -> None:
    """Make a torch.optim.Optimizer subclass available as ``optimizer=dict(type=name)``."""
    OPTIMIZERS[name] = cls


def build_torch_optimizer(optimizer_cfg: dict, named_parameters):
    """One param group holding every parameter (no paramwise_options)."""
    cfg = copy.deepcopy(optimizer_cfg)
    cls = OPTIMIZERS[cfg.pop("type")]
    cfg.pop("paramwise_options", None)
    params = [p for _, p in named_parameters]
    return cls(params, **cfg)


@dataclasses.dataclass
class Built:
    optimizer: torch.optim.Optimizer
    hooks: list
    runner_kwargs: dict


def build(cfg: dict, named_parameters, steps_per_epoch=None) -> Built:
    """The torch optimizer and the lr / momentum hooks a config describes."""
    runner = dict(cfg.get("runner", {}))
    runner_type = runner.get("type", "EpochBasedRunner")
    optimizer = build_torch_optimizer(cfg["optimizer"], list(named_parameters))
    hooks = [build_schedule_hook(cfg.get("lr_config"), "lr", runner_type),
             build_schedule_hook(cfg.get("momentum_config"), "momentum", runner_type)]
    kwargs = dict(steps_per_epoch=steps_per_epoch, max_epochs=runner.get("max_epochs"),
                  max_iters=runner.get("max_iters"))
    return Built(optimizer, [h for h in hooks if h is not None], kwargs)
