"""Old import path of the MMEngine-generation reference, now ``torch_ref.mmengine``.

Kept so that ``from mmengine_ref import run_mmengine`` and ``from mmengine_ref.upstream
import ...`` in tests written before the move still work: every name, and every submodule as
the same module object (the reference registers MMPretrain's classes once per process, so two
copies of a submodule must never exist).
"""

import sys

from torch_ref import mmengine as _impl
from torch_ref.mmengine import *  # noqa: F403
from torch_ref.mmengine import (
    __all__,  # noqa: F401
    layer_depth,
    model,
    record,
    run,
    runner,
    upstream,
)

for _module in (layer_depth, model, record, run, runner, upstream):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}"] = _module
del _impl, _module
