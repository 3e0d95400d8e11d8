"""Config -> torch optimizer + hooks in mmcv order (the reference side of ``build_optimizer``)."""

from __future__ import annotations

import copy
import dataclasses

import torch

from .hooks import OptimizerHook, SimSiamHook
from .lars import LARS
from .param_groups import param_groups
from .policies import build_schedule_hook
from .runner import ScheduleRunner

OPTIMIZERS = {name: getattr(torch.optim, name) for name in (
    "SGD", "Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "RMSprop", "Rprop", "ASGD",
    "NAdam", "RAdam")}
OPTIMIZERS["LARS"] = LARS


def register_optimizer(name: str, cls) -> None:
    """Make a torch.optim.Optimizer subclass available as ``optimizer=dict(type=name)``."""
    OPTIMIZERS[name] = cls


def build_torch_optimizer(optimizer_cfg: dict, named_parameters):
    kwargs, groups = param_groups(optimizer_cfg, named_parameters)
    return OPTIMIZERS[optimizer_cfg["type"]](groups, **kwargs)


def _optimizer_hook(cfg, named):
    oc = dict(cfg.get("optimizer_config") or {})
    hook_type = oc.pop("type", None)
    k = oc.pop("cumulative_iters" if hook_type == "GradientCumulativeOptimizerHook"
               else "update_interval", 1)
    loss_scale = None
    if hook_type in ("Fp16OptimizerHook", "GradAccumFp16OptimizerHook"):
        loss_scale = oc.pop("loss_scale", 512.0)
    if cfg.get("fp16") is not None:
        loss_scale = cfg["fp16"].get("loss_scale", 512.0)
    return OptimizerHook(named, update_interval=k, grad_clip=oc.get("grad_clip"),
                         frozen_layers_cfg=oc.get("frozen_layers_cfg"), loss_scale=loss_scale)


@dataclasses.dataclass
class Built:
    optimizer: torch.optim.Optimizer
    hooks: list
    optimizer_hook: OptimizerHook
    runner_kwargs: dict


def build(cfg: dict, named_parameters, steps_per_epoch=None) -> Built:
    """The torch optimizer and every hook the config describes."""
    cfg = copy.deepcopy(cfg)
    named = list(named_parameters)
    runner = dict(cfg.get("runner", {}))
    runner_type = runner.get("type", "EpochBasedRunner")
    optimizer = build_torch_optimizer(cfg["optimizer"], named)
    hooks = [build_schedule_hook(cfg.get("lr_config"), "lr", runner_type),
             build_schedule_hook(cfg.get("momentum_config"), "momentum", runner_type)]
    custom = cfg.get("custom_hooks") or []
    for hook in [custom] if isinstance(custom, dict) else custom:  # mmcv: one dict is a list
        if hook.get("type") == "SimSiamHook":
            hook = dict(hook)
            hook.pop("type")
            hooks.append(SimSiamHook(**hook))
    opt_hook = _optimizer_hook(cfg, named)
    hooks.append(opt_hook)
    kwargs = dict(steps_per_epoch=steps_per_epoch, max_epochs=runner.get("max_epochs"),
                  max_iters=runner.get("max_iters"))
    return Built(optimizer, [h for h in hooks if h is not None], opt_hook, kwargs)


class Runner(ScheduleRunner):
    """Replays a run: per iteration the hooks in mmcv order, ``backward`` of the given
    gradients (divided / scaled as the optimizer hook divides the loss), the optimizer
    hook's update."""

    def __init__(self, built: Built):
        super().__init__(built.optimizer, built.hooks, **built.runner_kwargs)
        self.optimizer_hook = built.optimizer_hook

    def train(self, gradients, record=None, num_iters=None):
        """``gradients(it) -> {name: tensor}``; ``record(runner)`` sees the values in force."""

        def body(runner):
            if record is not None:
                record(runner)
            self.optimizer_hook.backward(runner, gradients(runner.iter))

        self.run(body, num_iters=num_iters)
