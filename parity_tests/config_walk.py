"""The real configs grouped by optimisation setting, and one walk step: load, build, step, check.

A *setting* is what the optimisation of a config depends on; configs with the same setting
build the same optimizer (``upstream_views.json`` holds what MMEngine loads from each file):

* MMEngine (MMSelfSup 1.0.0, MMPretrain 1.2.0): ``optim_wrapper``, ``param_scheduler``,
  ``train_cfg``, ``default_scope``, ``auto_scale_lr``, the ``custom_hooks`` that act on the
  optimizer (anything but the hooks ``mmengine_hooks.ACCEPTED`` lists as leaving it alone),
  and the model's type and backbone type / arch / depth (layer decay reads them);
* MMSelfSup 0.11.0: ``optimizer``, ``optimizer_config``, ``lr_config``, ``momentum_config``,
  ``runner``, ``fp16``, ``custom_hooks`` (and the model, whose names the regexes match).

``walk(setting)`` loads the setting's first file with ``oss.load_config``, plans it on the full
tree named like its model (``walk_trees``), checks ``oss.describe`` against the upstream groups
(the groups the real MMEngine / MMPretrain constructors built on the real model, recorded in
``data/mmengine_paramwise.json.gz``; for 0.x, ``torch_ref``'s MMSelfSup 0.11 constructor on
the same names, read back from a real ``torch.optim`` optimizer), then builds the optimizer
on a few of those parameters (one per distinct group, so the step stays cheap) and takes a
few jitted steps.
"""

from __future__ import annotations

import json
import math
import warnings
from functools import cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_selfsup as oss
from optax_selfsup.config.mmengine_hooks import ACCEPTED
from optax_selfsup.paramwise import ModuleKinds

import walk_trees
from upstream_data import config_path, generation, load_views

KEYS_1X = ("optim_wrapper", "param_scheduler", "train_cfg", "default_scope", "auto_scale_lr")
KEYS_0X = ("optimizer", "optimizer_config", "lr_config", "momentum_config", "runner", "fp16",
           "custom_hooks")
BATCH_SIZE = 256  # the total batch size handed to configs that enable auto_scale_lr
MAX_PICKED = 6  # parameters stepped per setting
BIG = 10 ** 8  # an 'end' at or above this is MMEngine's INF, not a length


def optimiser_hooks(view) -> list:
    return [h for h in view.get("custom_hooks") or []
            if str(h.get("type", "")).rpartition(".")[2] not in ACCEPTED]


def model_facts(model) -> str | None:
    if not model:
        return None
    backbone = model.get("backbone") or {}
    backbone = backbone[0] if isinstance(backbone, list) else backbone
    return json.dumps([model.get("type"), {k: backbone[k] for k in ("type", "arch", "depth")
                                           if k in backbone}], sort_keys=True)


def has_optimizer(view) -> bool:
    """An ``optimizer`` (0.x; the IPU config's 1.x one too) or an ``optim_wrapper``."""
    return "optimizer" in view or "optim_wrapper" in view


def setting_key(rel, view) -> str | None:
    """None for a file without an optimizer (a dataset / model / runtime base, a zero-shot
    evaluation config with a ``train_cfg`` only)."""
    if not has_optimizer(view):
        return None
    if generation(rel) == "0.x":
        parts = [view.get(k) for k in KEYS_0X] + [view.get("model")]
    else:
        parts = [view.get(k) for k in KEYS_1X] + [optimiser_hooks(view),
                                                   model_facts(view.get("model"))]
    return json.dumps(parts, sort_keys=True, default=repr)


@cache
def views() -> dict:
    return {rel: v for rel, v in load_views().items()
            if "error" not in v and not v.get("lazy_import")}


@cache
def settings(gen: str) -> dict:
    """``{key: [relpath, ...]}`` for generation ``'0.x'`` / ``'1.x'``; key None collects the
    files without any optimisation key."""
    out: dict = {}
    for rel, view in views().items():
        if generation(rel) == gen:
            out.setdefault(setting_key(rel, view), []).append(rel)
    return out


# -- run length ----------------------------------------------------------------------------

def schedulers_of(view):
    ps = view.get("param_scheduler") or []
    return [ps] if isinstance(ps, dict) else list(ps)


def steps_per_epoch(rel, view) -> int:
    """An epoch length that fits the config: every iteration-valued bound (a warmup of
    ``end=500`` iterations, a step at iteration 18000, SwAV's frozen prototypes) lies inside
    the run, with room to spare; at least 2, so epoch boundaries exist."""
    if generation(rel) == "0.x":
        runner = view.get("runner") or {}
        epochs = runner.get("max_epochs")
        bounds = []
        for policy in (view.get("lr_config") or {}, view.get("momentum_config") or {}):
            if policy.get("warmup") and not policy.get("warmup_by_epoch", False):
                bounds.append(policy.get("warmup_iters", 0))
            if policy.get("by_epoch", True) is False and isinstance(policy.get("step"), list):
                bounds += policy["step"]
        bounds += list(((view.get("optimizer_config") or {}).get("frozen_layers_cfg")
                        or {}).values())
    else:
        train_cfg = view.get("train_cfg") or {}
        epochs = train_cfg.get("max_epochs") if (
            train_cfg.get("by_epoch") or "Epoch" in str(train_cfg.get("type", ""))) else None
        bounds = [s.get(k, 0) for s in schedulers_of(view) if s.get("by_epoch", True) is False
                  for k in ("begin", "end")]
        for hook in optimiser_hooks(view):
            bounds += list((hook.get("frozen_layers_cfg") or {}).values())
    bounds = [b for b in bounds if isinstance(b, (int, float)) and b < BIG]
    if not epochs:
        return 2
    return max(2, math.ceil(1.25 * max(bounds + [0]) / epochs))


# -- trees ---------------------------------------------------------------------------------

@cache
def recorded_index():
    """``{relpath: combo}`` for every recorded 1.x config, and ``{model facts: tree id}``."""
    data = walk_trees.recorded()
    of_config, tree_of_facts = {}, {}
    for combo in data["combos"]:
        for rel in combo["configs"]:
            of_config[rel] = combo
            if "tree" in combo:
                tree_of_facts.setdefault(model_facts(views()[rel].get("model")), combo["tree"])
    return of_config, tree_of_facts


def trees_1x(rels) -> tuple[walk_trees.Tree, list]:
    """The tree a 1.x setting is stepped on, and its recorded combos with groups."""
    of_config, tree_of_facts = recorded_index()
    combos = []
    for rel in rels:
        combo = of_config.get(rel)
        if combo is not None and "tree" in combo and combo not in combos:
            combos.append(combo)
    if combos:
        return walk_trees.recorded_tree(combos[0]["tree"]), combos
    view = views()[rels[0]]
    tid = tree_of_facts.get(model_facts(view.get("model")))
    if tid is not None:
        return walk_trees.recorded_tree(tid)._replace(source=f"recorded {tid} (same model)"), []
    return walk_trees.generated_1x(view.get("model"), rels[0]), []


def tree_for(rel, view):
    if generation(rel) == "0.x":
        return walk_trees.generated_0x(view.get("model"), rel), []
    return trees_1x(settings("1.x")[setting_key(rel, view)])


def kinds_of(tree, names) -> ModuleKinds:
    keep = set(names)
    return ModuleKinds(frozenset(tree.norm & keep), frozenset(tree.dwconv & keep))


# -- checks --------------------------------------------------------------------------------

def describe(cfg, rel, tree, spe, caught=None):
    """``oss.describe`` on every trainable parameter of ``tree``; the warnings it gives are
    appended to ``caught`` (unmatched rules, unknown hooks: upstream runs those silently)."""
    params = {n: np.zeros(s, np.float32) for n, s in tree.trainable()}
    extra = {} if generation(rel) == "0.x" else dict(module=kinds_of(tree, params),
                                                     batch_size=BATCH_SIZE)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        rows = oss.describe(cfg, params, steps_per_epoch=spe, name_map=None, **extra)
    if caught is not None:
        caught += [f"{w.category.__name__}: {w.message}" for w in got]
    return rows, params


def check_recorded_groups(cfg, rows, combo, tree) -> None:
    """describe's rows == the groups the real constructor built (MMEngine configs)."""
    table, index = combo["upstream"]["table"], combo["upstream"]["group"]
    expected = {n: table[g] for n, g in zip(tree.names, index) if g >= 0}
    assert sorted(r["name"] for r in rows) == sorted(expected), combo["configs"]
    opt = cfg["optim_wrapper"]["optimizer"]
    scale = cfg.get("auto_scale_lr") or {}
    ratio = BATCH_SIZE / scale["base_batch_size"] if scale.get("enable") else 1.0
    for row in rows:
        group = dict(expected[row["name"]])
        assert row["lr"] == group.pop("lr", opt["lr"]) * ratio, (combo["configs"][0], row)
        if "weight_decay" in opt or "weight_decay" in group:
            assert row["weight_decay"] == group.pop("weight_decay", opt.get("weight_decay")), \
                (combo["configs"][0], row)
        group.pop("param_name", None)
        for key, value in group.items():
            mine = row["momentum"] if key in ("momentum", "betas") else row[key]
            assert mine == (value[0] if key == "betas" else value), (combo["configs"][0], key, row)


def check_torch_ref_groups(cfg, rows, params) -> None:
    """describe's rows == the param groups of the torch optimizer MMSelfSup 0.11's constructor
    (``torch_ref``) builds on the same names (0.x configs)."""
    import torch

    import torch_ref

    named = [(n, torch.nn.Parameter(torch.zeros(v.shape))) for n, v in params.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer = torch_ref.build_torch_optimizer(cfg["optimizer"], named)
    groups = {n: g for (n, _), g in zip(named, optimizer.param_groups, strict=True)}
    assert sorted(r["name"] for r in rows) == sorted(groups)
    for row in rows:
        group = groups[row["name"]]
        momentum = group["betas"][0] if "betas" in group else group.get("momentum")
        got = (row["lr"], row["weight_decay"], row["momentum"], row["lars_exclude"], row["fix_lr"])
        want = (group["lr"], group.get("weight_decay"), momentum,
                bool(group.get("lars_exclude", False)), bool(group.get("fix_lr", False)))
        assert got == pytest_approx(want), (row["name"], got, want)


def pytest_approx(values):
    import pytest

    return tuple(pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for v in values)


def pick(rows, limit=MAX_PICKED) -> list[str]:
    """One parameter per distinct group setting (lr, weight decay, momentum, flags, frozen
    period), at most ``limit``: the flagged ones (fix_lr, lars_exclude, frozen) first, the
    rest spread over the tree. What the step is run on."""
    first: dict = {}
    for row in rows:
        sig = tuple(v for k, v in row.items() if k not in ("name", "group"))
        first.setdefault(sig, row)
    flagged = [r["name"] for r in first.values()
               if r["fix_lr"] or r["lars_exclude"] or r["frozen_until"]][:limit]
    rest = [r["name"] for r in first.values() if r["name"] not in flagged]
    room = limit - len(flagged)
    if len(rest) > room:
        rest = [rest[round(i * (len(rest) - 1) / max(room - 1, 1))] for i in range(room)]
    return flagged + rest


def expected_loss_scale(rel, cfg) -> float | None:
    """The initial loss scale of an AMP / fp16 config (GradScaler's 2**16 when dynamic)."""
    if generation(rel) == "0.x":
        value = (cfg.get("fp16") or {}).get("loss_scale", 512.0) if cfg.get("fp16") else None
    else:
        ow = cfg["optim_wrapper"]
        value = ow.get("loss_scale", "dynamic") if ow.get("type") == "AmpOptimWrapper" else None
    if value is None:
        return None
    if value == "dynamic":
        return 2.0 ** 16
    return float(value.get("init_scale", 2.0 ** 16)) if isinstance(value, dict) else value


def update_interval(rel, cfg) -> int:
    if generation(rel) == "0.x":
        return (cfg.get("optimizer_config") or {}).get("update_interval", 1)
    return cfg["optim_wrapper"].get("accumulative_counts", 1)


def step(cfg, rel, tree, names, spe, iterations):
    """Build on the parameters ``names`` (real names, tiny shapes), ``init`` and
    ``iterations`` updates, jitted as users run them; checks the loss scale of AMP / fp16
    configs (read, never multiplied), that the update compiles once, that every parameter and
    hyperparameter stays finite and that the last iteration applied an update exactly when
    it completed an accumulation window."""
    shapes = dict(tree.trainable())
    params = {n: jnp.full(shapes[n], 0.5, jnp.float32) for n in names}
    extra = {} if generation(rel) == "0.x" else dict(module=kinds_of(tree, names),
                                                     batch_size=BATCH_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # describe() saw them on the whole tree
        tx = oss.build_optimizer(cfg, params, steps_per_epoch=spe, name_map=None, **extra)
        update = jax.jit(tx.update)
        state = jax.jit(tx.init)(params)
        scale = expected_loss_scale(rel, cfg)
        if scale is not None:
            assert float(oss.loss_scale(state)) == scale, rel
        for t in range(iterations):
            grads = {n: jnp.full(p.shape, 0.01 * (t + 1), jnp.float32)
                     for n, p in params.items()}
            updates, state = update(grads, state, params)
            params = optax.apply_updates(params, updates)
        # the state's types do not drift: the later steps reuse the first step's compile
        assert update._cache_size() == 1, rel
    for n, p in params.items():
        assert bool(jnp.all(jnp.isfinite(p))), (rel, n)
    for key, value in oss.current_hparams(state).items():
        values = np.asarray(jax.tree.leaves(value), np.float64)
        assert np.all(np.isfinite(values)), (rel, key)
    assert bool(oss.has_updated(state)) == (iterations % update_interval(rel, cfg) == 0), rel
    return params, state


READS = {"0.x": KEYS_0X, "1.x": KEYS_1X + ("default_hooks",)}


class Prepared(NamedTuple):
    rels: list
    cfg: dict
    tree: walk_trees.Tree
    spe: int
    names: list  # the parameters stepped
    groups_checked: int
    warnings: list

    @property
    def rel(self):
        return self.rels[0]

    def step_key(self) -> str:
        """Everything the build reads (the optimisation keys, the stepped parameters and
        their kinds, the epoch length, the model where layer decay reads it): settings with
        equal keys build the same transformation on the same tree, so one step covers both."""
        gen = generation(self.rel)
        parts = [self.cfg.get(k) for k in READS[gen]] + [self.spe]
        if gen == "1.x":
            parts[-1:-1] = [optimiser_hooks(self.cfg)]
            if self.cfg["optim_wrapper"].get("constructor"):
                parts.append(model_facts(self.cfg.get("model")))
        shapes = dict(self.tree.trainable())
        parts.append([(n, shapes[n], n in self.tree.norm, n in self.tree.dwconv)
                      for n in self.names])
        return json.dumps(parts, sort_keys=True, default=repr)


def prepare(rels) -> Prepared:
    """Load the setting's first file, plan it on its whole tree and check the groups against
    upstream's; pick the parameters to step."""
    rel = rels[0]
    view = views()[rel]
    cfg = oss.load_config(config_path(rel))
    spe = steps_per_epoch(rel, view)
    tree, combos = tree_for(rel, view)
    caught: list = []
    rows, params = describe(cfg, rel, tree, spe, caught)
    checked = 0
    if generation(rel) == "0.x":
        check_torch_ref_groups(cfg, rows, params)
        checked = 1
    for combo in combos:
        ctree = walk_trees.recorded_tree(combo["tree"])
        crows = rows if ctree.names == tree.names else describe(cfg, rel, ctree, spe)[0]
        check_recorded_groups(cfg, crows, combo, ctree)
        checked += 1
    return Prepared(rels, cfg, tree, spe, pick(rows), checked, caught)

