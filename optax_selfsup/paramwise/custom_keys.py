"""MMEngine's ``DefaultOptimWrapperConstructor``: ``paramwise_cfg`` -> one param group per leaf.

Upstream: ``mmengine/optim/optimizer/default_constructor.py`` (MMEngine 0.10.7). Without a
``paramwise_cfg`` (or with an empty one) the optimizer gets ONE group holding every parameter,
frozen ones included, with the optimizer config's settings. Otherwise every parameter with
``requires_grad`` gets its own group, in the model's parameter order (each module's own
parameters before its children's), holding only the keys the constructor sets; the optimizer
fills in the rest from its config. For each parameter, with ``base_lr = optimizer['lr']`` and
``base_wd = optimizer.get('weight_decay')``:

1. ``custom_keys`` are tried longest first (ties in alphabetical order); a key matches when it
   is a substring of ``f'{module_path}.{attr}'`` (a parameter of the root module is tested as
   ``'.attr'``). The first match sets ``lr = base_lr * lr_mult`` (default 1),
   ``weight_decay = base_wd * decay_mult`` (default 1; only when ``base_wd`` is set), then
   copies EVERY key of its dict into the group (``lr_mult``, ``decay_mult``, ``lars_exclude``,
   ``fix_lr``, and ``lr`` / ``momentum`` / ... which override), and no other rule applies.
2. Otherwise ``lr = base_lr * bias_lr_mult`` for a parameter named exactly ``bias`` outside a
   norm layer; then, when ``base_wd`` is set, the first of: norm layer -> ``norm_decay_mult``;
   ``bias`` -> ``bias_decay_mult``; depthwise conv -> ``dwconv_decay_mult``; 1-d (``ndim == 1``;
   a 0-d parameter is not) -> ``flat_decay_mult`` (each only when given), as
   ``weight_decay = base_wd * mult``.

``decay_mult`` in a custom key, ``bias_decay_mult``, ``norm_decay_mult`` or
``dwconv_decay_mult`` without an optimizer ``weight_decay`` are refused (MMEngine's
``_validate_cfg``); ``flat_decay_mult`` then has no effect (MMEngine accepts it: a warning here).
``bypass_duplicate`` is accepted and changes nothing (a JAX tree holds a shared parameter once);
``dcn_offset_lr_mult`` only acts on mmcv's deformable convs, which a JAX tree has none of.

Checkpoints: with more than one group, MMEngine's ``OptimWrapper.state_dict()`` adds a
``base_param_settings`` entry (the optimizer's defaults with ``params=tensor([0.])``) next to the
torch optimizer's ``state`` and ``param_groups``; it is no group and changes no value.
"""

from __future__ import annotations

import difflib
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from ..errors import ConfigError, choices
from .module_kinds import ModuleKinds, guess_module_kinds

#: ``paramwise_cfg`` keys ``DefaultOptimWrapperConstructor`` reads.
DEFAULT_KEYS = ("custom_keys", "bias_lr_mult", "bias_decay_mult", "norm_decay_mult",
                "dwconv_decay_mult", "flat_decay_mult", "dcn_offset_lr_mult", "bypass_duplicate")
#: The ``*_decay_mult`` keys ``_validate_cfg`` refuses without an optimizer weight_decay.
VALIDATED_DECAY_KEYS = ("bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult")


class ParamGroups(NamedTuple):
    """The param groups an MMEngine constructor builds, without the parameters.

    ``per_parameter``: False for ONE group of every parameter (no / empty ``paramwise_cfg``):
    ``groups == ({},)`` and ``names`` is every parameter (frozen included). True: ``groups[i]``
    is the group of ``names[i]``, the trainable parameters in MMEngine's order
    (:func:`mmengine_order`), with exactly the
    keys the constructor set (everything else comes from the optimizer config);
    ``left_out``: the frozen parameters, in no group. ``depends_on_guess``: the parameters
    whose group would differ if a guessed module kind (``ModuleKinds.guessed``) were wrong.
    """

    per_parameter: bool
    names: tuple
    groups: tuple
    left_out: tuple = ()
    depends_on_guess: tuple = ()

    def group(self, name: str) -> dict:
        """The keys the constructor set for ``name`` (``{}`` in the single group)."""
        if not self.per_parameter:
            return dict(self.groups[0])
        try:
            return dict(self.groups[self.names.index(name)])
        except ValueError:
            raise ConfigError(f"{name!r} is in no param group (left out: frozen or unknown); "
                              f"parameters: {choices(self.names)}") from None

    def resolved(self, name: str, optimizer_cfg: Mapping) -> dict:
        """The group as the optimizer holds it: the config's settings, then the group's."""
        base = {k: v for k, v in optimizer_cfg.items() if k != "type"}
        return {**base, **self.group(name)}


def mmengine_order(names: Sequence[str]) -> list[str]:
    """``names`` as torch's ``named_parameters()`` walks a module tree (MMEngine's order): a
    module's own parameters first, then its children, each in order of first appearance.
    Names from a torch ``state_dict`` come back unchanged; a JAX dict's (sorted) names come
    back with every module's own leaves moved before its submodules'."""
    root: tuple = ([], {})  # (own names, {part: child})
    for name in names:
        node = root
        *path, _ = name.split(".")
        for part in path:
            node = node[1].setdefault(part, ([], {}))
        node[0].append(name)
    out: list[str] = []
    stack = [root]
    while stack:
        own, children = stack.pop()
        out.extend(own)
        stack.extend(reversed(list(children.values())))
    return out


def sorted_custom_keys(custom_keys: Mapping) -> list[str]:
    """MMEngine's order: alphabetical, then stable by length, longest first."""
    return sorted(sorted(custom_keys), key=len, reverse=True)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_paramwise_cfg(paramwise_cfg, optimizer_cfg: Mapping, known: Sequence[str],
                        where: str) -> dict:
    """MMEngine's ``_validate_cfg`` plus what would crash upstream later, as ConfigErrors;
    unknown keys (ignored upstream) are warned about."""
    if paramwise_cfg is None:
        return {}
    if not isinstance(paramwise_cfg, Mapping):
        raise ConfigError(f"{where}.paramwise_cfg must be None or a dict, got "
                          f"{type(paramwise_cfg).__name__}")
    if not isinstance(optimizer_cfg, Mapping):
        raise ConfigError(f"{where}.optimizer must be a dict, got {type(optimizer_cfg).__name__}")
    base_wd = optimizer_cfg.get("weight_decay")
    custom = paramwise_cfg.get("custom_keys", {})
    if not isinstance(custom, Mapping):
        raise ConfigError(f"{where}.paramwise_cfg.custom_keys must be a dict from name substring "
                          f"to settings, got {type(custom).__name__}")
    for key, settings in custom.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}.paramwise_cfg.custom_keys: key {key!r} must be a string "
                              "(a substring of parameter names)")
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where}.paramwise_cfg.custom_keys[{key!r}] must be a dict "
                              f"(lr_mult, decay_mult, ...), got {settings!r}")
        for mult in ("lr_mult", "decay_mult"):
            if mult in settings and not _is_number(settings[mult]):
                raise ConfigError(f"{where}.paramwise_cfg.custom_keys[{key!r}].{mult} must be a "
                                  f"number, got {settings[mult]!r}")
        if base_wd is None and "decay_mult" in settings:
            raise ConfigError(f"{where}.paramwise_cfg.custom_keys[{key!r}] sets decay_mult but "
                              f"{where}.optimizer has no weight_decay (MMEngine refuses this: "
                              "'base_wd should not be None'); give the optimizer a weight_decay")
    for key in VALIDATED_DECAY_KEYS:
        if key in paramwise_cfg and base_wd is None:
            raise ConfigError(f"{where}.paramwise_cfg.{key} needs a weight_decay in "
                              f"{where}.optimizer (MMEngine refuses it: 'base_wd should not be "
                              "None')")
    for key, value in paramwise_cfg.items():
        mult = str(key).endswith("_mult") and key in known
        if mult and value is not None and not _is_number(value):
            raise ConfigError(f"{where}.paramwise_cfg.{key} must be a number, got {value!r}")
        if key not in known:
            if key == "_delete":
                hint = (" ('_delete' is not MMEngine's '_delete_': the base config's "
                        "paramwise_cfg was merged in, not replaced)")
            else:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
            warnings.warn(f"{where}.paramwise_cfg.{key} is not a setting of this constructor: "
                          f"MMEngine ignores it, and so does this port{hint}. Settings: "
                          f"{choices(known)}", UserWarning, stacklevel=4)
    if "flat_decay_mult" in paramwise_cfg and base_wd is None:
        warnings.warn(f"{where}.paramwise_cfg.flat_decay_mult has no effect: {where}.optimizer "
                      "has no weight_decay (MMEngine accepts and ignores it too)", UserWarning,
                      stacklevel=4)
    return dict(paramwise_cfg)


def _base_lr(optimizer_cfg: Mapping, name: str, why: str, where: str):
    lr = optimizer_cfg.get("lr")
    if not _is_number(lr):
        raise ConfigError(f"{where}.optimizer.lr is {lr!r}, but {why} for {name!r} multiplies "
                          "it (MMEngine crashes here); give the optimizer an lr")
    return lr


def match_name(name: str) -> str:
    """The string MMEngine tests custom keys against: ``f'{prefix}.{attr}'`` (root: '.attr')."""
    return name if "." in name else f".{name}"


def default_group(name: str, shape, optimizer_cfg: Mapping, cfg: Mapping, sorted_keys,
                  is_norm: bool, is_dwconv: bool, where: str = "optim_wrapper") -> dict:
    """The group ``DefaultOptimWrapperConstructor.add_params`` builds for one parameter."""
    base_wd = optimizer_cfg.get("weight_decay")
    custom_keys = cfg.get("custom_keys", {})
    attr = name.rpartition(".")[2]
    group: dict = {}
    tested = match_name(name)
    for key in sorted_keys:
        if key in tested:
            settings = custom_keys[key]
            lr_mult = settings.get("lr_mult", 1.0)
            group["lr"] = _base_lr(optimizer_cfg, name, f"custom_keys[{key!r}]", where) * lr_mult
            if base_wd is not None:
                group["weight_decay"] = base_wd * settings.get("decay_mult", 1.0)
            group.update(settings)
            return group
    bias_lr_mult = cfg.get("bias_lr_mult")
    if attr == "bias" and not is_norm and bias_lr_mult is not None:
        group["lr"] = _base_lr(optimizer_cfg, name, "bias_lr_mult", where) * bias_lr_mult
    if base_wd is not None:
        for applies, key in ((is_norm, "norm_decay_mult"), (attr == "bias", "bias_decay_mult"),
                             (is_dwconv, "dwconv_decay_mult"),
                             (len(shape) == 1, "flat_decay_mult")):
            if applies and cfg.get(key) is not None:
                group["weight_decay"] = base_wd * cfg[key]
                break
    return group


def mmengine_param_groups(names: Sequence[str], shapes: Sequence[Sequence[int]],
                          optimizer_cfg: Mapping, paramwise_cfg: Mapping | None = None, *,
                          kinds: ModuleKinds | None = None, frozen=(),
                          where: str = "optim_wrapper") -> ParamGroups:
    """``DefaultOptimWrapperConstructor``'s param groups for torch-style leaf ``names``.

    ``shapes``: each leaf's shape (only its length matters here); ``optimizer_cfg``: the
    ``optim_wrapper.optimizer`` dict (``lr``, ``weight_decay``); ``kinds``: which leaves
    belong to norm layers / depthwise convs (:mod:`.module_kinds`; by default guessed from
    the names and shapes, see ``ParamGroups.depends_on_guess``); ``frozen``: names with
    ``requires_grad=False`` (left out of every group, with a paramwise_cfg). The groups come
    in MMEngine's order (:func:`mmengine_order`).
    """
    names = list(names)
    shapes = [tuple(s) for s in shapes]
    if len(names) != len(shapes):
        raise ConfigError(f"mmengine_param_groups: {len(names)} names but {len(shapes)} shapes")
    shape_of = dict(zip(names, shapes))
    names = mmengine_order(names)
    shapes = [shape_of[n] for n in names]
    cfg = check_paramwise_cfg(paramwise_cfg, optimizer_cfg, DEFAULT_KEYS, where)
    if not cfg:
        return ParamGroups(False, tuple(names), ({},))
    if kinds is None:
        kinds = guess_module_kinds(names, shapes)
    frozen = set(frozen)
    if "dcn_offset_lr_mult" in cfg:
        warnings.warn(f"{where}.paramwise_cfg.dcn_offset_lr_mult has no effect: it acts only on "
                      "mmcv's deformable convolutions (DeformConv2d), which this tree has none of",
                      UserWarning, stacklevel=2)
    keys = sorted_custom_keys(cfg.get("custom_keys", {}))
    guessed_norm, guessed_dw = set(kinds.guessed_norm), set(kinds.guessed_dwconv)
    kept, groups, depends = [], [], []
    for name, shape in zip(names, shapes):
        if name in frozen:
            continue
        is_norm, is_dw = kinds.is_norm(name), kinds.is_dwconv(name)
        group = default_group(name, shape, optimizer_cfg, cfg, keys, is_norm, is_dw, where)
        flips = ([(not is_norm, is_dw)] if name in guessed_norm else []) + (
            [(is_norm, not is_dw)] if name in guessed_dw else [])
        if any(default_group(name, shape, optimizer_cfg, cfg, keys, n, d, where) != group
               for n, d in flips):
            depends.append(name)
        kept.append(name)
        groups.append(group)
    return ParamGroups(True, tuple(kept), tuple(groups),
                       tuple(n for n in names if n in frozen), tuple(depends))
