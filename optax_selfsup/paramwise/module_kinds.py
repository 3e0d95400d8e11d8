"""Which parameters belong to a normalization layer or a depthwise convolution.

MMEngine's ``DefaultOptimWrapperConstructor`` (``norm_decay_mult``, ``bias_lr_mult``,
``dwconv_decay_mult``) and MMPretrain's ``LearningRateDecayOptimWrapperConstructor``
(``norm_decay_mult``) decide this from the torch module that owns a parameter:

* a **norm layer** is an instance of ``_BatchNorm`` (``BatchNorm1d/2d/3d``, ``SyncBatchNorm``),
  ``_InstanceNorm``, ``GroupNorm`` or ``LayerNorm`` (subclasses included; ``RMSNorm`` is not one);
* a **depthwise conv** is an ``nn.Conv2d`` with ``in_channels == groups``; its weight
  ``[out, in / groups, kh, kw]`` then has ``shape[1] == 1`` (a Flax kernel
  ``(kh, kw, in / groups, out)`` has ``shape[2] == 1``). Every parameter of such a module counts
  (its bias too).

A JAX pytree does not carry module types, so there are three ways to know them, all giving a
:class:`ModuleKinds` keyed by torch-style leaf names:

* :func:`module_kinds_from_nnx`: an ``nnx.Module`` (or its ``GraphDef`` and ``State``) knows its
  modules: ``nnx.BatchNorm``, ``LayerNorm``, ``GroupNorm``, ``InstanceNorm`` are norm layers and an
  ``nnx.Conv`` with a 2-d kernel and ``in_features == feature_group_count`` is depthwise. Exact.
* :func:`module_kinds_from_linen`: a Linen ``nn.Module`` and the arguments of its ``init``;
  ``init`` is traced under ``jax.eval_shape`` (nothing is computed) with ``nn.intercept_methods``
  recording the type of the module at each path. Exact.
* :func:`guess_module_kinds`: torch-style names and shapes only. Norm layers are recognised by
  the names MMPretrain / MMSelfSup models give them (see :data:`NORM_NAME`), or given
  explicitly (``norm_layers=``: module paths or regular expressions, matched in full); a 4-d
  ``weight`` whose input-channel dim is 1 is a depthwise conv (``dwconv_layers=`` overrides).
  Every parameter whose kind came from a guess is listed in ``ModuleKinds.guessed``, so the
  caller can warn naming the ones whose settings depend on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ..errors import ConfigError
from ..names import make_name_map

#: The module-name pattern of a norm layer in MMPretrain / MMSelfSup models, tested (in full) on
#: the last component of the owning module's path: ``bn``, ``bn1``, ``bn2d``, ``ln``, ``ln_1``,
#: ``gn``, ``in``, ``norm``, ``norm1``, ``fc_norm``, ``pre_norm``, ``ln_pre``, ``norm1_q_cross``,
#: ``layer_norm``, ``batch_norm`` ... (a ``ConvModule``'s ``bn`` / ``gn`` / ``ln`` / ``in``, ViT's
#: ``ln1`` / ``ln2`` and final ``ln1``, Swin's ``norm1`` / ``norm2`` / ``downsample.norm``,
#: ConvNeXt's ``norm``). Linen's ``BatchNorm_0`` / ``LayerNorm_1`` are ``bn0`` / ``ln1`` after
#: the default name map.
NORM_NAME = re.compile(
    r"(\w+_)?(bn|ln|gn|norm|batch_?norm|layer_?norm|group_?norm|instance_?norm)(\d+d?)?(_\w+)?"
    r"|in\d*")
#: Module paths whose position makes them a norm layer: ResNet's ``downsample.1`` (the
#: BatchNorm after the shortcut conv in a ``Sequential``).
NORM_PATH = re.compile(r"(.*\.)?downsample\.1")
_LEAVES = ("weight", "bias", "scale")


class ModuleKinds(NamedTuple):
    """Per torch-style leaf name: owned by a norm layer / a depthwise conv, and which leaves'
    kinds are guesses (from names or shapes, not module types)."""

    norm: frozenset
    dwconv: frozenset
    #: 1-d leaves whose norm kind (either way) was guessed from names.
    guessed_norm: tuple = ()
    #: leaves of modules whose depthwise kind (either way) was guessed from shapes.
    guessed_dwconv: tuple = ()

    @property
    def guessed(self) -> tuple:
        """Every leaf whose kind (norm or depthwise, either way) is a guess."""
        return tuple(dict.fromkeys(self.guessed_norm + self.guessed_dwconv))

    def is_norm(self, name: str) -> bool:
        return name in self.norm

    def is_dwconv(self, name: str) -> bool:
        return name in self.dwconv


def _owner(name: str) -> tuple[str, str]:
    path, _, attr = name.rpartition(".")
    return path, attr


def _compile_paths(paths, what: str):
    if paths is None:
        return None
    if isinstance(paths, str):
        paths = [paths]
    compiled = []
    for p in paths:
        try:
            compiled.append(re.compile(p if isinstance(p, str) else p.pattern))
        except (re.error, TypeError, AttributeError) as err:
            raise ConfigError(f"{what}: {p!r} is not a module path or regular expression "
                              f"({err})") from None
    return compiled


def _matches(compiled, path: str) -> bool:
    return any(r.fullmatch(path) for r in compiled)


def looks_like_norm(path: str) -> bool:
    """Whether a module path names a norm layer by MMPretrain's conventions (a guess)."""
    last = path.rpartition(".")[2]
    return bool(NORM_NAME.fullmatch(last) or NORM_PATH.fullmatch(path))


def guess_module_kinds(names: Sequence[str], shapes: Sequence[Sequence[int]], *,
                       raw_names: Sequence[str] | None = None,
                       norm_layers: Iterable[str] | None = None,
                       dwconv_layers: Iterable[str] | None = None) -> ModuleKinds:
    """Module kinds from torch-style leaf ``names`` and ``shapes`` alone.

    A module (the name up to its last dot) is a norm layer when ``norm_layers`` (module paths
    or regexes, matched in full against the torch-style module path) says so, or, without
    ``norm_layers``, when its parameters are exactly a 1-d ``weight`` (``scale``) and a ``bias``
    of the same shape (an affine norm layer: in every MMPretrain 1.2.0 model all of these are
    torch norm layers except HorNet's own ``HorNetLayerNorm``, which MMEngine does not count),
    or all its parameters are 1-d ``weight`` / ``bias`` / ``scale`` and its name looks like a
    norm layer's (:func:`looks_like_norm`: a norm without bias, ``LayerNorm(bias=False)``).
    It is a depthwise conv when ``dwconv_layers`` says so, or, without it, when its ``weight``
    is 4-d with input-channel dim 1 (``shape[1]`` in torch layout; ``shape[2]`` for a leaf whose
    raw name ends in ``kernel``, Flax's ``(kh, kw, in / groups, out)``; pass ``raw_names`` to
    tell them apart).

    ``guessed_norm`` lists every 1-d leaf whose norm kind was guessed (either way),
    ``guessed_dwconv`` every leaf of a module with a 4-d ``weight`` whose depthwise kind was
    guessed from its shape (either way).
    """
    names, shapes = list(names), [tuple(s) for s in shapes]
    if len(names) != len(shapes):
        raise ConfigError(f"guess_module_kinds: {len(names)} names but {len(shapes)} shapes")
    raw = list(raw_names) if raw_names is not None else names
    norm_re = _compile_paths(norm_layers, "norm_layers")
    dw_re = _compile_paths(dwconv_layers, "dwconv_layers")
    modules: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        modules.setdefault(_owner(name)[0], []).append(i)
    norm, dwconv, guessed_norm, guessed_dw = set(), set(), [], []
    for path, idx in modules.items():
        attrs = {_owner(names[i])[1]: i for i in idx}
        weight = attrs.get("weight")
        is_dw = False
        if dw_re is not None:
            is_dw = _matches(dw_re, path)
        elif weight is not None and len(shapes[weight]) == 4:
            channel = 2 if raw[weight].endswith("kernel") else 1
            is_dw = shapes[weight][channel] == 1
            guessed_dw.extend(names[i] for i in idx)
        if norm_re is not None:
            is_norm = _matches(norm_re, path)
        else:
            flat = all(len(shapes[i]) == 1 and a in _LEAVES for a, i in attrs.items())
            affine = (set(attrs) in ({"weight", "bias"}, {"scale", "bias"})
                      and len(shapes[i0 := attrs.get("weight", attrs.get("scale"))]) == 1
                      and shapes[i0] == shapes[attrs["bias"]])
            is_norm = flat and (affine or looks_like_norm(path))
            guessed_norm.extend(names[i] for i in idx if len(shapes[i]) == 1)
        for i in idx:
            if is_norm:
                norm.add(names[i])
            if is_dw and not is_norm:
                dwconv.add(names[i])
    return ModuleKinds(frozenset(norm), frozenset(dwconv), tuple(guessed_norm),
                       tuple(guessed_dw))


# -- Flax modules ------------------------------------------------------------------------------

def _norm_types(lib) -> tuple:
    return tuple(getattr(lib, n) for n in ("BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm")
                 if hasattr(lib, n))


def _key_str(key) -> str:
    return str(key)


def module_kinds_from_nnx(model, state=None, *, name_map="default") -> ModuleKinds:
    """Module kinds of an ``nnx.Module`` (or ``(graphdef, state)``: ``model`` a ``GraphDef``,
    ``state`` its ``nnx.State``), keyed by the torch-style names of its ``nnx.Param`` leaves
    (dotted paths after ``name_map``, as the rest of the package names leaves)."""
    from flax import nnx

    if state is not None:
        model = nnx.merge(model, state)
    if not isinstance(model, nnx.Module):
        raise ConfigError(f"module_kinds_from_nnx: expected an nnx.Module or (GraphDef, State), "
                          f"got {type(model).__name__}")
    translate = make_name_map(name_map)
    norm_types = _norm_types(nnx)
    norm, dwconv = set(), set()
    for path, module in nnx.iter_modules(model):
        is_norm = isinstance(module, norm_types)
        is_dw = (isinstance(module, nnx.Conv) and len(module.kernel_size) == 2
                 and module.in_features == module.feature_group_count)
        if not (is_norm or is_dw):
            continue
        prefix = ".".join(_key_str(k) for k in path)
        for attr, value in vars(module).items():
            if isinstance(value, nnx.Param):
                leaf = translate(f"{prefix}.{attr}" if prefix else attr)
                (norm if is_norm else dwconv).add(leaf)
    return ModuleKinds(frozenset(norm), frozenset(dwconv))


def module_kinds_from_linen(module, *init_args, method=None, name_map="default",
                            **init_kwargs) -> ModuleKinds:
    """Module kinds of a Linen ``module``: ``module.init(jax.random.key(0), *init_args,
    method=method, **init_kwargs)`` is traced under ``jax.eval_shape`` (no arrays are
    computed) while ``nn.intercept_methods`` records each submodule's type; a ``Conv`` whose
    2-d kernel has input-channel dim 1 (``in_features == feature_group_count``) is depthwise.
    Names are those of ``params`` (``params.`` dropped by the default ``name_map``)."""
    import jax
    from flax import linen as nn

    types: dict[tuple, object] = {}

    def record(next_fun, args, kwargs, context):
        types.setdefault(tuple(context.module.path), context.module)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        variables = jax.eval_shape(lambda: module.init(jax.random.key(0), *init_args,
                                                       method=method, **init_kwargs))
    params = variables.get("params", {})
    translate = make_name_map(name_map)
    norm_types = _norm_types(nn)
    norm, dwconv = set(), set()
    for path, sub in types.items():
        node = params
        for part in path:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if not isinstance(node, dict):
            continue
        own = {k: v for k, v in node.items() if not isinstance(v, dict)}
        kernel = own.get("kernel")
        is_norm = isinstance(sub, norm_types)
        is_dw = (isinstance(sub, nn.Conv) and kernel is not None and len(kernel.shape) == 4
                 and kernel.shape[2] == 1)
        if not (is_norm or is_dw):
            continue
        for attr in own:
            leaf = translate(".".join(("params",) + tuple(path) + (attr,)))
            (norm if is_norm else dwconv).add(leaf)
    return ModuleKinds(frozenset(norm), frozenset(dwconv))
