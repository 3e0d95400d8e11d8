"""MMPretrain 1.2.0's own files, loaded by path into MMEngine's registries, and the AMP patch.

``import mmpretrain`` pulls in mmcv 2.x (compiled ops), which the reference does not install.
The few files the optimisation configs need import nothing from mmpretrain but its
``registry.py``, so they are executed here from the installed wheel, unchanged:

* ``mmpretrain/registry.py``: the 21 ``mmpretrain`` scope registries (children of MMEngine's);
* ``engine/optimizers/lars.py`` (``LARS``), ``engine/optimizers/lamb.py`` (``Lamb``),
  ``engine/optimizers/layer_decay_optim_wrapper_constructor.py``,
  ``engine/schedulers/weight_decay_scheduler.py`` (``CosineAnnealingWeightDecay``),
  ``engine/hooks/simsiam_hook.py`` (``SimSiamHook``).

``mmpretrain`` itself is a stub package in ``sys.modules`` with a real ``__spec__`` (MMEngine's
lazy-import config parser reads it) and an empty ``__path__`` (so nothing else of mmpretrain can
be imported by accident). Every scope registry is marked imported: otherwise the first
``Registry.get`` runs ``import_from_location`` and tries ``import mmpretrain.engine``. The stubs
(``mmpretrain``, ``mmselfsup`` and their ``registry`` modules) stay in ``sys.modules`` for the
rest of the process: the registries they hold are children of MMEngine's global ones, and
executing ``registry.py`` a second time would add a duplicate ``mmpretrain`` scope (MMEngine
asserts against that), so every file is executed once per process.

Scope ``mmselfsup`` (MMSelfSup 1.x configs, ``default_scope='mmselfsup'``) is a stand-in: its
registries are built here with ``scope='mmselfsup'`` and hold MMPretrain's ``LARS`` and
``SimSiamHook`` classes. MMSelfSup 1.0.0's ``engine/optimizers/lars.py`` and
``engine/hooks/simsiam_hook.py`` are byte-identical to MMPretrain 1.2.0's except for the registry
import line (checked with ``diff``); mmselfsup itself is not installed because its metadata pulls
in mmcls and mmcv. MMSelfSup's own ``LearningRateDecayOptimWrapperConstructor`` (a different
class, used only by configs with ``mmcls::`` bases that cannot load) is not provided.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
import types
from pathlib import Path

import torch

MMPRETRAIN_VERSION = "1.2.0"

_ENGINE_FILES = (
    "engine/optimizers/lars.py",
    "engine/optimizers/lamb.py",
    "engine/optimizers/layer_decay_optim_wrapper_constructor.py",
    "engine/schedulers/weight_decay_scheduler.py",
    "engine/hooks/simsiam_hook.py",
)
#: What the ``mmselfsup`` stand-in scope holds: (registry name, module file, class name).
_MMSELFSUP_CLASSES = (
    ("OPTIMIZERS", "engine/optimizers/lars.py", "LARS"),
    ("HOOKS", "engine/hooks/simsiam_hook.py", "SimSiamHook"),
)

def mmpretrain_root() -> Path:
    """The installed ``mmpretrain`` package directory (found without importing it)."""
    try:
        dist = importlib.metadata.distribution("mmpretrain")
    except importlib.metadata.PackageNotFoundError as err:
        raise ImportError(
            f"the MMEngine reference needs mmpretrain=={MMPRETRAIN_VERSION} on disk: "
            f"pip install 'optax_selfsup[mmengine-ref]'") from err
    if dist.version != MMPRETRAIN_VERSION:
        raise ImportError(f"mmpretrain {dist.version} is installed; the reference is pinned to "
                          f"{MMPRETRAIN_VERSION}")
    return Path(dist.locate_file("mmpretrain"))


def _stub_package(name: str) -> types.ModuleType:
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        module.__path__ = []
        module.__package__ = name
        sys.modules[name] = module
    return module


def _exec_file(module_name: str, path: Path) -> types.ModuleType:
    """Execute an upstream file unchanged as module ``module_name`` (once per process: a module
    already in ``sys.modules`` is reused, so registries never get duplicate scope children)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before exec: Registry() infers its scope from it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _mark_imported(registry_module: types.ModuleType) -> None:
    for name in registry_module.__all__:
        getattr(registry_module, name)._imported = True


def load_mmpretrain() -> dict[str, types.ModuleType]:
    """Register MMPretrain 1.2.0's optimizers, constructor, scheduler and hook; returns the
    loaded modules by file (``'registry.py'``, ``'engine/optimizers/lars.py'``, ...)."""
    root = mmpretrain_root()
    for package in ("mmpretrain", "mmpretrain.engine", "mmpretrain.engine.optimizers",
                    "mmpretrain.engine.schedulers", "mmpretrain.engine.hooks"):
        _stub_package(package)
    loaded = {"registry.py": _exec_file("mmpretrain.registry", root / "registry.py")}
    _mark_imported(loaded["registry.py"])
    for rel in _ENGINE_FILES:
        loaded[rel] = _exec_file("mmpretrain." + rel[:-3].replace("/", "."), root / rel)
    if "mmselfsup.registry" not in sys.modules:
        _install_mmselfsup_scope(loaded)
    return loaded


def _install_mmselfsup_scope(loaded: dict[str, types.ModuleType]) -> None:
    from mmengine.registry import Registry

    twin = loaded["registry.py"]
    _stub_package("mmselfsup")
    module = types.ModuleType("mmselfsup.registry")
    module.__spec__ = importlib.machinery.ModuleSpec("mmselfsup.registry", None)
    module.__all__ = list(twin.__all__)
    for name in module.__all__:
        parent = getattr(twin, name).parent
        registry = Registry(getattr(twin, name).name, parent=parent, scope="mmselfsup")
        registry._imported = True
        setattr(module, name, registry)
    for registry_name, rel, cls_name in _MMSELFSUP_CLASSES:
        getattr(module, registry_name).register_module(module=getattr(loaded[rel], cls_name))
    sys.modules["mmselfsup.registry"] = module


def swav_freeze_only_hook() -> str:
    """Register (once) and name ``SwAVFreezeOnlyHook``: MMPretrain 1.2.0's ``SwAVHook``
    (``engine/hooks/swav_hook.py``, executed unchanged) with its queue handling, which needs
    SwAV's head, switched off. Its freezing (``before_train_iter``: ``requires_grad=False`` for
    the parameters named in ``frozen_layers_cfg`` until that iteration) is upstream's code."""
    load_mmpretrain()
    root = mmpretrain_root()
    _exec_file("mmpretrain.utils", root / "utils/misc.py")
    module = _exec_file("mmpretrain.engine.hooks.swav_hook", root / "engine/hooks/swav_hook.py")
    registry = module.HOOKS
    if "SwAVFreezeOnlyHook" not in registry.module_dict:
        class SwAVFreezeOnlyHook(module.SwAVHook):
            def before_run(self, runner):
                pass

            def before_train_epoch(self, runner):
                pass

            def after_train_epoch(self, runner):
                pass

        registry.register_module(module=SwAVFreezeOnlyHook)
    return "mmpretrain.SwAVFreezeOnlyHook"  # found from any default_scope


@contextlib.contextmanager
def cpu_amp():
    """Let MMEngine's ``AmpOptimWrapper`` run on a CPU-only torch, unchanged otherwise.

    ``AmpOptimWrapper.__init__`` asserts a CUDA/NPU/MLU/MUSA device
    (``amp_optimizer_wrapper.py:76-79``) and builds ``torch.cuda.amp.GradScaler``, which on a
    machine without CUDA warns and *disables* itself (no scaling, no skipped steps). For the
    duration of the run the module's ``is_cuda_available`` answers True and its ``GradScaler``
    is ``torch.amp.GradScaler('cpu', ...)``, the same class with the same arithmetic (init 2**16,
    growth 2, backoff 0.5, interval 2000, ``_amp_foreach_non_finite_check_and_unscale_``) on
    CPU tensors. Everything else in the wrapper (scale, unscale before clipping, skipped steps,
    ``update(new_scale=...)`` for a static scale, the loss-scaler state dict) is upstream code.
    The autocast context it enters is CPU bfloat16 autocast; the reference model's loss is an
    elementwise product and a sum, which autocast leaves in the parameter dtype.
    """
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp

    saved = amp.is_cuda_available, amp.GradScaler
    amp.is_cuda_available = lambda: True
    amp.GradScaler = functools.partial(torch.amp.GradScaler, "cpu")
    try:
        yield
    finally:
        amp.is_cuda_available, amp.GradScaler = saved


@contextlib.contextmanager
def trusted_checkpoints():
    """Let ``Runner.resume`` read the checkpoints this reference wrote, unchanged otherwise.

    MMEngine 0.10.7 loads a checkpoint with ``torch.load(filename, map_location=...)``
    (``runner/checkpoint.py``, ``load_from_local``), whose ``weights_only`` default turned
    True in torch 2.6; the message hub it saved holds ``HistoryBuffer`` objects, which that
    default refuses, so upstream cannot resume its own checkpoints on torch 2.13. For the
    duration of the resume ``torch.load`` defaults to ``weights_only=False``, as before
    torch 2.6 (the files are the ones this process just wrote).
    """
    original = torch.load

    def load(*args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original
