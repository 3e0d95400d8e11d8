"""The optimizer registry and one factory per torch.optim class (plus LARS and Lamb).

``oss.sgd(lr=0.1, momentum=0.9)`` is ``torch_optimizer("SGD", ...)``. Users add
their own per-tensor rule with ``register_optimizer``; LBFGS and SparseAdam
(closure / sparse gradients) are refused.
"""

from __future__ import annotations

import inspect

from .registry import OPTIMIZERS
from .transforms.rule import REQUIRED, Rule
from .transforms.torch_optimizer import resolve_rule, torch_optimizer


def register_optimizer(name: str, *, defaults: dict, momentum_key=None, init_slots=None,
                       flags=(), validate=None, reads_step=True, shared_args=(),
                       force=False):
    """Decorator: register ``step(g, p, slots, h, t) -> (new_p, slots)`` as ``name``.

    ``defaults`` lists the keyword arguments with their defaults (``REQUIRED``
    for none); ``momentum_key`` ('momentum' / 'betas') lets momentum schedules
    drive it; ``init_slots(p, h)`` gives the per-tensor state. ``reads_step=False``
    (or a function of a tensor's hyperparameters ``h -> bool``) keeps no step count
    for the tensors whose update never reads ``t`` (it is then passed as None).
    ``shared_args`` names the arguments your torch optimizer reads once for all param
    groups (from its constructor, not from the group): a paramwise rule setting one is
    refused, as upstream would ignore it.
    """
    reads = reads_step if callable(reads_step) else (lambda h, value=bool(reads_step): value)

    def add(step):
        rule = Rule(name, dict(defaults), step,
                    init_slots or (lambda p, h: {}), momentum_key,
                    validate or (lambda h: None), tuple(flags), reads_step=reads,
                    shared_args=tuple(shared_args))
        OPTIMIZERS.register(name, rule, force=force)
        return step

    return add


# where the optimizers that torch.optim lacks come from
UPSTREAM_CLASS = {"LARS": "MMSelfSup's ``LARS`` (mmselfsup.core.optimizer)",
                  "Lamb": "MMPretrain's ``Lamb`` (mmpretrain.engine.optimizers)"}


def optimizer_factory(name: str):
    """``name``'s optax factory with torch's keyword arguments as its signature.

    ``optimizer_factory('SGD')(lr=0.1, momentum=0.9)`` is ``oss.sgd(lr=0.1, momentum=0.9)``.
    The explicit signature lets ``optax.inject_hyperparams`` see every argument (lr
    and momentum may be numbers, per-leaf pytrees or schedules ``count -> value``).
    """
    rule = resolve_rule(name)
    params = [inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=inspect.Parameter.empty if v is REQUIRED else v)
              for k, v in rule.defaults.items()]

    def factory(*args, **kwargs):
        if len(args) > len(params):
            raise TypeError(f"{rule.name} takes at most {len(params)} positional arguments")
        for p, value in zip(params, args):
            if p.name in kwargs:
                raise TypeError(f"{rule.name} got multiple values for argument {p.name!r}")
            kwargs[p.name] = value
        return torch_optimizer(rule, **kwargs)  # names unknown keywords and the optimizer

    factory.__signature__ = inspect.Signature(params)
    factory.__name__ = factory.__qualname__ = rule.name.lower()
    origin = UPSTREAM_CLASS.get(rule.name, f"torch.optim.{rule.name}")
    defaults = ", ".join(f"{k}={'required' if v is REQUIRED else repr(v)}"
                         for k, v in rule.defaults.items())
    factory.__doc__ = (f"{rule.name} as an optax transformation, step for step as "
                       f"{origin} (``oss.torch_optimizer({rule.name!r}, ...)``); arguments "
                       f"and defaults as upstream's: {defaults}.")
    return factory


lars = optimizer_factory("LARS")
sgd = optimizer_factory("SGD")
adam = optimizer_factory("Adam")
adamw = optimizer_factory("AdamW")
adamax = optimizer_factory("Adamax")
adagrad = optimizer_factory("Adagrad")
adadelta = optimizer_factory("Adadelta")
rmsprop = optimizer_factory("RMSprop")
rprop = optimizer_factory("Rprop")
asgd = optimizer_factory("ASGD")
nadam = optimizer_factory("NAdam")
radam = optimizer_factory("RAdam")
lamb = optimizer_factory("Lamb")  # MMPretrain's

__all__ = ["REQUIRED", "resolve_rule", "register_optimizer", "torch_optimizer", "optimizer_factory",
           "lars", "sgd",
           "adam", "adamw", "adamax", "adagrad", "adadelta", "rmsprop", "rprop", "asgd",
           "nadam", "radam", "lamb"]
