"""Every real config with an optimizer loads, builds and steps, unmodified.

The configs: every ``.py`` config of the MMSelfSup 0.11.0, MMSelfSup 1.0.0 and MMPretrain 1.2.0
wheels (``data/upstream_configs/``), each either

* *walked*: it has an optimizer; ``oss.load_config`` loads it, ``oss.describe`` gives the param
  groups the real constructor builds (MMEngine / MMPretrain's, recorded on the real model;
  MMSelfSup 0.11's, from ``torch_ref``), ``oss.build_optimizer`` builds it on a tree named like
  its model and a few jitted steps stay finite (``config_walk``);
* *refused*: listed below with the reason, and checked to raise the documented ``ConfigError``;
* or without an optimizer (datasets, models, runtimes, zero-shot evaluation configs).

Configs with the same optimisation setting (``config_walk.setting_key``: what the optimizer
is built from, read from MMEngine's own view of each file) build the same optimizer, so each
distinct setting is walked once; ``test_config_generations`` checks that every file loads
here to the keys MMEngine loads. CI runs the settings that together show every feature of
the real configs (``cover``); ``-m slow`` walks every setting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import optax_selfsup as oss

import config_walk as cw
from upstream_data import config_path, generation, load_views

# Files MMEngine itself cannot load alone (the view records MMEngine's error): the reason
# (a prefix of MMEngine's error) and what ``oss.load_config`` says instead.
REFUSED_AT_LOAD = {
    "ModuleNotFoundError: mmcls is not installed": (
        "a _base_ from MMClassification (mmcls::), read through MMEngine's package scope",
        r"_base_ 'mmcls::[^']+' is a config of the package 'mmcls'"),
    "ModuleNotFoundError: mmdet is not installed": (
        "a _base_ from MMDetection (mmdet::)", r"_base_ 'mmdet::[^']+' is a config of the "
                                               r"package 'mmdet'"),
    "ModuleNotFoundError: mmsegmentation is not installed": (
        "a _base_ from MMSegmentation (mmseg::)", r"_base_ 'mmseg::[^']+' is a config of the "
                                                  r"package 'mmseg'"),
    "RuntimeError: The configuration file type in the inheritance chain": (
        "a new-style (lazy-import) config", r"new-style \(lazy-import\) config, which is not "
                                            r"supported"),
    "KeyError: 'test_pipeline'": (
        "MMEngine raises KeyError loading it (a base deletes the key a later line reads)",
        r"MMEngine could not load this config: KeyError: 'test_pipeline'"),
}
COUNT_AT_LOAD = {"ModuleNotFoundError: mmcls is not installed": 62,
                 "ModuleNotFoundError: mmdet is not installed": 7,
                 "ModuleNotFoundError: mmsegmentation is not installed": 2,
                 "RuntimeError: The configuration file type in the inheritance chain": 4,
                 "KeyError: 'test_pipeline'": 2}
# The lazy-import model base MMEngine loads (no error in its view; no optimizer).
LAZY_BASE = "mmpretrain-1.2.0/_base_/models/replknet-31B_in1k.py"

SCOPE = (r"is registered only in the 'mmpretrain'(?: and 'mmselfsup')? scope\(s\), but the "
         r"config's scope is 'mmengine'")
DEEPSPEED = r"optim_wrapper.type='DeepSpeedOptimWrapper' is not supported"
LOOP_KEYERROR = r"train_cfg must have exactly one of 'type' and 'by_epoch' \(MMEngine raises " \
                r"KeyError\)"
# Files with an optimizer that load but whose optimizer is refused, as upstream cannot build
# it either or its step is not reproduced: file -> (reason, the ConfigError's message).
REFUSED_AT_BUILD = {
    "mmpretrain-1.2.0/_base_/schedules/imagenet_bs2048_rsb.py": (
        "a schedule base without default_scope: MMEngine's own registry has no Lamb", SCOPE),
    "mmpretrain-1.2.0/_base_/schedules/imagenet_lars_coslr_200e.py": (
        "a schedule base without default_scope: MMEngine's own registry has no LARS", SCOPE),
    "mmselfsup-1.0.0/selfsup/_base_/schedules/lars_coslr-200e_in1k.py": (
        "a schedule base without default_scope: MMEngine's own registry has no LARS", SCOPE),
    "mmpretrain-1.2.0/_base_/schedules/imagenet_lars_coslr_90e.py": (
        "a schedule base without default_scope: MMEngine's own registry has no LARS", SCOPE),
    "mmpretrain-1.2.0/blip/blip-base_8xb32_caption.py": (
        "train_cfg = dict(max_epochs=10), neither type nor by_epoch: MMEngine's runner "
        "raises", LOOP_KEYERROR),
    "mmpretrain-1.2.0/blip/blip-base_8xb32_caption_flickr30k.py": ("as blip caption",
                                                                    LOOP_KEYERROR),
    "mmpretrain-1.2.0/blip2/blip2-opt2.7b_8xb16_gqa.py": ("as blip caption", LOOP_KEYERROR),
    "mmpretrain-1.2.0/blip2/blip2-opt2.7b_8xb16_vqa.py": ("as blip caption", LOOP_KEYERROR),
    "mmpretrain-1.2.0/maskfeat/benchmarks/vit-base-p16_8xb256-coslr-100e_in1k.py": (
        "train_cfg has both type and by_epoch: MMEngine's runner raises RuntimeError",
        r"train_cfg must have exactly one of 'type' and 'by_epoch' \(MMEngine raises "
        r"RuntimeError\)"),
    "mmpretrain-1.2.0/mae/benchmarks/vit-huge-p14_8xb128-ds-coslr-50e_in1k.py": (
        "DeepSpeedOptimWrapper: DeepSpeed's engine steps (ZeRO, its own scaling)", DEEPSPEED),
    "mmpretrain-1.2.0/mae/benchmarks/vit-large-p16_8xb128-ds-coslr-50e_in1k.py": (
        "DeepSpeedOptimWrapper", DEEPSPEED),
    "mmpretrain-1.2.0/minigpt4/minigpt-4_baichuan-7b_caption.py": (
        "DeepSpeedOptimWrapper", DEEPSPEED),
    "mmpretrain-1.2.0/vision_transformer/vit-base-p16_4xb544-ipu_in1k.py": (
        "mmcv 1.x runner / fp16 next to MMEngine's param_scheduler (an IPU config)",
        r"the config mixes the two config generations: 'runner', 'fp16' belong to MMSelfSup "
        r"0.x"),
}
STEPS = 2  # per setting; an accumulating setting gets its window (see _iterations)


# -- the CI-cheap cover --------------------------------------------------------------------

def _type(value) -> str | None:
    return None if value is None else str(value).rpartition(".")[2]


def _keys(table) -> set:
    return {k for v in (table or {}).values() if isinstance(v, dict) for k in v}


def features(rel, view) -> set:
    """What decides the code a setting runs (not its numbers): optimizer, wrapper,
    constructor, the paramwise keys used, clipping, accumulation, loss scaling, each
    scheduler / policy kind, the loop, the hooks, and the backbone layer decay reads."""
    if generation(rel) == "0.x":
        opt, oc = view["optimizer"], view.get("optimizer_config") or {}
        lr, mom = view.get("lr_config") or {}, view.get("momentum_config") or {}
        out = {("optimizer", opt.get("type")), ("constructor", opt.get("constructor")),
               ("optimizer_config", tuple(sorted(oc))), ("accumulate", oc.get("update_interval",
                                                                             1) > 1),
               ("lr", lr.get("policy"), lr.get("warmup"), lr.get("by_epoch", True),
                lr.get("warmup_by_epoch", False)), ("momentum", mom.get("policy")),
               ("runner", (view.get("runner") or {}).get("type")),
               ("fp16", repr((view.get("fp16") or {}).get("loss_scale")) if view.get("fp16")
                else None)}
        out |= {("paramwise", k) for k in _keys(opt.get("paramwise_options"))}
        out |= {("hook", _type(h.get("type"))) for h in view.get("custom_hooks") or []}
        return {("0.x",) + f for f in out}
    ow = view.get("optim_wrapper") or {}
    opt, pw = ow.get("optimizer") or {}, ow.get("paramwise_cfg") or {}
    clip = ow.get("clip_grad")
    out = {("wrapper", ow.get("type")), ("optimizer", _type(opt.get("type"))),
           ("constructor", ow.get("constructor")), ("scope", view.get("default_scope")),
           ("clip", (clip.get("type", "norm") if clip else None)),
           ("accumulate", ow.get("accumulative_counts", 1) > 1),
           ("loss_scale", type(ow.get("loss_scale", "dynamic")).__name__
            if ow.get("type") == "AmpOptimWrapper" else None),
           ("loop", (view.get("train_cfg") or {}).get("type"),
            (view.get("train_cfg") or {}).get("by_epoch")),
           ("auto_scale_lr", bool((view.get("auto_scale_lr") or {}).get("enable"))),
           ("schedulers", len(cw.schedulers_of(view)))}
    out |= {("paramwise_cfg", k) for k in pw} | {("custom_keys", k)
                                                 for k in _keys(pw.get("custom_keys"))}
    out |= {("scheduler", _type(s.get("type")), s.get("by_epoch", True),
             bool(s.get("convert_to_iter_based"))) for s in cw.schedulers_of(view)}
    out |= {("hook", _type(h.get("type"))) for h in cw.optimiser_hooks(view)}
    if ow.get("constructor"):  # the layer ids are the backbone type's (not its arch's)
        facts = json.loads(cw.model_facts(view.get("model")) or "[null, {}]")
        out.add(("layer decay on", _type(facts[1].get("type"))))
    return {("1.x",) + f for f in out}


def cover(keys) -> list:
    """Settings (of ``keys``, in order) that together show every feature of them all: the
    greedy set cover, deterministic (ties go to the earlier setting)."""
    table = {k: features(rels[0], cw.views()[rels[0]]) for gen in ("0.x", "1.x")
             for k, rels in cw.settings(gen).items() if k in keys}
    left, chosen = set().union(*table.values()), []
    while left:
        best = max(table, key=lambda k: len(table[k] & left))
        chosen.append(best)
        left -= table[best]
    return chosen


def walked_keys() -> list:
    """The settings walked: every setting, less the refused ones (refused as a whole)."""
    keys = []
    for gen in ("0.x", "1.x"):
        for key, rels in cw.settings(gen).items():
            refused = [r for r in rels if r in REFUSED_AT_BUILD]
            assert not refused or refused == rels, (refused, rels)
            if key is not None and not refused:
                keys.append(key)
    return keys


def rels_of(key) -> list:
    return next(rels for gen in ("0.x", "1.x") for k, rels in cw.settings(gen).items()
                if k == key)


def _iterations(p: cw.Prepared) -> int:
    window = cw.update_interval(p.rel, p.cfg)
    return window if window > 1 else STEPS


def walk(keys) -> tuple[int, int]:
    """Prepare (load, groups) every setting of ``keys`` and step each distinct build once;
    returns (settings, builds stepped)."""
    seen: dict = {}
    failures = []
    for key in keys:
        rels = rels_of(key)
        try:
            p = cw.prepare(rels)
            if p.step_key() not in seen:
                cw.step(p.cfg, p.rel, p.tree, p.names, p.spe, _iterations(p))
                seen[p.step_key()] = p.rel
        except Exception as err:  # noqa: BLE001 - collected, reported together below
            failures.append(f"{rels[0]} (+{len(rels) - 1}): {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures)
    return len(keys), len(seen)


# -- bookkeeping -------------------------------------------------------------------------------

def test_every_config_is_walked_refused_or_has_no_optimizer():
    views = load_views()
    walked = {rel for key in walked_keys() for rel in rels_of(key)}
    at_load = {rel for rel, v in views.items() if "error" in v}
    at_build = set(REFUSED_AT_BUILD)
    plain = {rel for rel, v in views.items() if "error" not in v and not cw.has_optimizer(v)}
    assert not (walked & at_build) and not (walked & at_load) and not (at_build & at_load)
    assert walked | at_load | at_build | plain | {LAZY_BASE} == set(views)
    assert not cw.has_optimizer(views[LAZY_BASE]) and views[LAZY_BASE].get("lazy_import")
    assert len(views) == 1197 and len(at_load) == 77 and len(at_build) == 13
    # every config with an optimizer (0.x: 100, MMSelfSup 1.0: 69, MMPretrain 1.2: 513, plus
    # the IPU config's top-level optimizer) is walked or refused at build
    assert len(walked) + len(at_build) == 100 + 69 + 513 + 1
    assert all(cw.setting_key(rel, views[rel]) is not None for rel in walked | at_build)
    n0 = sum(1 for k in walked_keys() if generation(rels_of(k)[0]) == "0.x")
    assert (len(walked), n0, len(walked_keys()) - n0) == (670, 87, 430)
    docs = " ".join((Path(__file__).resolve().parents[1] / "docs" / "config-files.md")
                    .read_text().split())
    assert f"Of the {len(walked) + len(at_build)} real files that define an optimizer and " \
           f"load, {len(walked)} build and step" in docs
    assert f"The other {len(at_build)} are refused when built" in docs


def test_refused_at_load_with_the_documented_error():
    views = load_views()
    counts, wrong = dict.fromkeys(REFUSED_AT_LOAD, 0), []
    for rel, view in views.items():
        if "error" not in view:
            continue
        reason = next(r for r in REFUSED_AT_LOAD if view["error"].startswith(r))
        counts[reason] += 1
        with pytest.raises(oss.ConfigError) as info:
            oss.load_config(config_path(rel))
        message = str(info.value)
        # named: the file, or the base that holds the refused line
        if not re.search(REFUSED_AT_LOAD[reason][1], message) or \
                not re.match(r"\S+/upstream_configs/\S+\.py: ", message):
            wrong.append(f"{rel}: {message}")
    assert counts == COUNT_AT_LOAD and not wrong, wrong
    # no optimisation key: read as an mmcv 1.x file, whose code runs (`import
    # mmpretrain.models` raises: mmcv is not installed)
    with pytest.raises(oss.ConfigError, match=r"replknet-31B_in1k.py:1: running the config "
                                              r"file raised"):
        oss.load_config(config_path(LAZY_BASE))


@pytest.mark.parametrize("rel", sorted(REFUSED_AT_BUILD))
def test_refused_at_build_with_the_documented_error(rel):
    view = cw.views()[rel]
    cfg = oss.load_config(config_path(rel))
    tree, _ = cw.tree_for(rel, view)
    params = {n: np.zeros(s, np.float32) for n, s in tree.trainable()}
    with pytest.raises(oss.ConfigError, match=REFUSED_AT_BUILD[rel][1]):
        oss.build_optimizer(cfg, params, steps_per_epoch=cw.steps_per_epoch(rel, view),
                            name_map=None, batch_size=cw.BATCH_SIZE)


# -- the walk ----------------------------------------------------------------------------------

def test_walk_the_settings_that_show_every_feature():
    """The CI-cheap walk: the fewest settings that show every feature (optimizer, wrapper,
    constructor, paramwise key, scheduler kind, hook, ...) of the real configs, jitted."""
    keys = cover(walked_keys())
    assert 30 <= len(keys) <= 45, len(keys)
    walk(keys)  # ~25 s of CPU (75 s of wall time on two busy shared cores)


@pytest.mark.slow
def test_walk_every_setting():
    """Every distinct setting: loaded, groups checked against upstream, built and stepped,
    jitted (~3 min of CPU; settings that build the same transformation on the same
    parameters are stepped once)."""
    settings, stepped = walk(walked_keys())
    assert settings == 517 and 250 < stepped < settings, stepped
