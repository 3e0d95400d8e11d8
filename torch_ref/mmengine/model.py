"""The toy model and data the real Runner trains: real module types, a loss with given gradients.

Module spec (``modules=`` of ``run_mmengine``): ``{module_path: spec}``, where ``module_path`` is
the torch name of the module that owns parameters (``'backbone.bn1'``, ``''`` for the root) and
``spec`` is an ``nn.Module`` instance or a tuple:

==========================  ==============================================================
``('bn', C)``               ``nn.BatchNorm2d(C)`` (a ``_BatchNorm``)
``('bn1d', C)``             ``nn.BatchNorm1d(C)``
``('syncbn', C)``           ``nn.SyncBatchNorm(C)`` (a ``_BatchNorm``)
``('ln', C)``               ``nn.LayerNorm(C)`` (``C`` an int or a shape)
``('gn', G, C)``            ``nn.GroupNorm(G, C)``
``('in', C)``               ``nn.InstanceNorm2d(C, affine=True)`` (an ``_InstanceNorm``)
``('conv', O, I, k[, g])``  ``nn.Conv2d(I, O, k, groups=g)``: weight ``[O, I // g, k, k]``;
                            depthwise for MMEngine when ``I == g``
``('dwconv', C, k)``        ``nn.Conv2d(C, C, k, groups=C)``
``('linear', O, I)``        ``nn.Linear(I, O)``
``('module',)``             a plain ``nn.Module`` holding the parameters as attributes
==========================  ==============================================================

A typed module keeps only the parameters that are given (``bias=None`` otherwise) and gets the
given values; the shapes must match. A module path not in the map is inferred from its
parameters: a module whose parameters are a 4-d ``weight`` (and optionally ``bias``) is an
``nn.Conv2d(weight.shape[1], weight.shape[0], kernel, groups=1)`` (MMEngine's depthwise rule,
``in_channels == groups``, then holds exactly when ``weight.shape[1] == 1``, as for any real
``Conv2d``); anything else is a plain ``nn.Module``. Norm layers are never guessed from names:
declare them, or MMEngine's ``norm_decay_mult`` does not see them (as it would not upstream).

Parameters are registered in the order given, each module's own parameters before its
children's (a typed module in its own order: ``weight``, ``bias``); ``named_parameters()`` of the
built model is the order MMEngine's constructors walk.

Loss of iteration ``t``: ``sum(p * g_t[name]).sum()`` over the parameters present in ``g_t``
(computed with autocast off). ``OptimWrapper.scale_loss`` divides it by ``k`` (the accumulation
factor, the remainder in the last window) and ``GradScaler.scale`` multiplies it by the scale,
so autograd adds ``g_t * c`` to ``p.grad``, with ``c = scale / k`` rounded to the parameter
dtype (``c = 1`` exactly without AMP and accumulation), the product rounded again, and the
window's terms summed in iteration order. A parameter absent from ``g_t`` gets no gradient at
``t`` (``grad`` stays ``None`` after ``zero_grad``, and torch optimizers skip it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import nn

_SHORTHANDS = {
    "bn": lambda c: nn.BatchNorm2d(c),
    "bn1d": lambda c: nn.BatchNorm1d(c),
    "syncbn": lambda c: nn.SyncBatchNorm(c),
    "ln": lambda c: nn.LayerNorm(c),
    "gn": lambda g, c: nn.GroupNorm(g, c),
    "in": lambda c: nn.InstanceNorm2d(c, affine=True),
    "conv": lambda o, i, k, g=1: nn.Conv2d(i, o, k, groups=g),
    "dwconv": lambda c, k: nn.Conv2d(c, c, k, groups=c),
    "linear": lambda o, i: nn.Linear(i, o),
    "module": lambda: nn.Module(),
}


class GradientModel(BaseModel):
    """A ``BaseModel`` whose loss at its ``t``-th ``train_step`` has gradient ``grads[t]``."""

    def __init__(self, grads: list[dict[str, torch.Tensor]]):
        super().__init__()
        self._given_grads = grads
        self._calls = 0

    def forward(self, inputs=None, data_samples=None, mode="tensor"):
        if mode != "loss":
            raise ValueError(f"the reference model only computes a loss, not mode={mode!r}")
        grads = self._given_grads[self._calls]
        self._calls += 1
        with torch.autocast("cpu", enabled=False):
            terms = [(p * grads[name]).sum() for name, p in self.named_parameters()
                     if name in grads and p.requires_grad]
            loss = torch.stack(terms).sum() if terms else torch.zeros((), requires_grad=True)
        return {"loss": loss}


def _owner(name: str) -> tuple[str, str]:
    path, _, attr = name.rpartition(".")
    return path, attr


def _make(spec, path: str) -> nn.Module:
    if isinstance(spec, nn.Module):
        return spec
    kind, *args = spec
    if kind not in _SHORTHANDS:
        raise ValueError(f"module {path!r}: unknown spec kind {kind!r} "
                         f"(one of {sorted(_SHORTHANDS)}, or an nn.Module)")
    return _SHORTHANDS[kind](*args)


def _infer(own: dict[str, np.ndarray]) -> nn.Module:
    weight = own.get("weight")
    if weight is not None and weight.ndim == 4 and set(own) <= {"weight", "bias"}:
        out_c, in_c, kh, kw = weight.shape
        return nn.Conv2d(in_c, out_c, (kh, kw), bias="bias" in own)
    return nn.Module()


def build_model(values: Mapping[str, np.ndarray], modules: Mapping[str, object],
                dtype: torch.dtype, frozen=()) -> GradientModel:
    """The module tree for ``values`` (torch names in registration order) under ``modules``."""
    owned: dict[str, dict[str, np.ndarray]] = {}
    for name, value in values.items():
        path, attr = _owner(name)
        owned.setdefault(path, {})[attr] = np.asarray(value)
    unknown = set(modules) - set(owned)
    if unknown:
        raise ValueError(f"modules {sorted(unknown)} own none of the given parameters")
    model = GradientModel([])
    if "" in modules:
        raise ValueError("the root is the reference model itself; it cannot be typed")
    built: dict[str, nn.Module] = {"": model}
    for path in owned:  # first appearance order; parents first
        parts = path.split(".") if path else []
        for depth in range(1, len(parts) + 1):
            sub = ".".join(parts[:depth])
            if sub in built:
                continue
            if sub in modules:
                module = _make(modules[sub], sub)
            elif sub in owned:
                module = _infer(owned[sub])
            else:
                module = nn.Module()
            built[".".join(parts[:depth - 1])].add_module(parts[depth - 1], module)
            built[sub] = module
    for path, own in owned.items():
        module = built[path]
        for attr, _ in list(module.named_parameters(recurse=False)):
            if attr not in own:
                module.register_parameter(attr, None)
        for attr, value in own.items():
            name = f"{path}.{attr}" if path else attr
            expected = getattr(module, attr, None)
            if isinstance(expected, nn.Parameter) and tuple(expected.shape) != value.shape:
                raise ValueError(f"{name}: shape {value.shape}, but {type(module).__name__} "
                                 f"has {tuple(expected.shape)}")
            module.register_parameter(attr, nn.Parameter(torch.tensor(value, dtype=dtype),
                                                         requires_grad=name not in frozen))
    model.to(dtype)
    missing = set(values) - {n for n, _ in model.named_parameters()}
    if missing:
        raise ValueError(f"parameters {sorted(missing)} were not registered")
    return model


class Indices(torch.utils.data.Dataset):
    """``steps_per_epoch`` items; the model ignores them (it counts its own steps)."""

    metainfo: dict = {}

    def __init__(self, length: int):
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return {"inputs": torch.tensor(index)}
