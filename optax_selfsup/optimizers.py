"""The optimizer registry and one factory per torch.optim class (plus LARS).

``oss.sgd(lr=0.1, momentum=0.9)`` is ``torch_optimizer("SGD", ...)``. Users add
their own per-tensor rule with ``register_optimizer``; LBFGS and SparseAdam
(closure / sparse gradients) are refused.
"""

from __future__ import annotations

import functools

from .registry import OPTIMIZERS
from .transforms import adam_family, sgd_family
from .transforms.rule import REQUIRED, Rule
from .transforms.torch_optimizer import resolve_rule, torch_optimizer

for _rule in sgd_family.RULES + adam_family.RULES:
    OPTIMIZERS.register(_rule.name, _rule)

def register_optimizer(name: str, *, defaults: dict, momentum_key=None, init_slots=None,
                       flags=(), validate=None, force=False):
    """Decorator: register ``step(g, p, slots, h, t) -> (new_p, slots)`` as ``name``.

    ``defaults`` lists the keyword arguments with their defaults (``REQUIRED``
    for none); ``momentum_key`` ('momentum' / 'betas') lets momentum schedules
    drive it; ``init_slots(p, h)`` gives the per-tensor state.
    """

    def add(step):
        rule = Rule(name, dict(defaults), step,
                    init_slots or (lambda p, h: {}), momentum_key,
                    validate or (lambda h: None), tuple(flags))
        OPTIMIZERS.register(name, rule, force=force)
        return step

    return add


lars = functools.partial(torch_optimizer, "LARS")
sgd = functools.partial(torch_optimizer, "SGD")
adam = functools.partial(torch_optimizer, "Adam")
adamw = functools.partial(torch_optimizer, "AdamW")
adamax = functools.partial(torch_optimizer, "Adamax")
adagrad = functools.partial(torch_optimizer, "Adagrad")
adadelta = functools.partial(torch_optimizer, "Adadelta")
rmsprop = functools.partial(torch_optimizer, "RMSprop")
rprop = functools.partial(torch_optimizer, "Rprop")
asgd = functools.partial(torch_optimizer, "ASGD")
nadam = functools.partial(torch_optimizer, "NAdam")
radam = functools.partial(torch_optimizer, "RAdam")

__all__ = ["REQUIRED", "resolve_rule", "register_optimizer", "torch_optimizer", "lars", "sgd",
           "adam", "adamw", "adamax", "adagrad", "adadelta", "rmsprop", "rprop", "asgd",
           "nadam", "radam"]
