"""--cfg-options never crashes: every option either merges as mmcv's DictAction does or
is a ConfigError naming it (mmcv itself raises TypeError, ValueError, AttributeError or
RecursionError on some of these)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optax_selfsup as oss
from optax_selfsup.config.cfg_options import parse_option_value

CFG = {"optimizer": {"type": "SGD", "lr": 0.1, "betas": (0.9, 0.99)},
       "workflow": [("train", 1)], "custom_hooks": [{"type": "A", "x": [1, 2]}, "s"],
       "min_lr": 0.0, "name": "x", "empty": []}


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="()[],=ab1.-{} '\"", max_size=24))
def test_any_value_parses_or_is_a_config_error(text):
    try:
        parse_option_value(text, "key")
    except oss.ConfigError:
        pass


keys = st.lists(st.sampled_from(["optimizer", "workflow", "custom_hooks", "min_lr", "name",
                                 "empty", "betas", "lr", "type", "x", "0", "1", "2", "-1",
                                 "_delete_"]), min_size=1, max_size=4).map(".".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(keys, st.sampled_from(["1", "a", "[1,2]", "(1,2)", "None", "True"])),
                min_size=1, max_size=3))
def test_any_key_merges_or_is_a_config_error_naming_the_option(options):
    options = [f"{k}={v}" for k, v in options]
    try:
        out = oss.merge_options(CFG, options)
    except oss.ConfigError as err:
        assert "--cfg-options" in str(err)
        assert any(repr(o) in str(err) or o in str(err) for o in options), (str(err), options)
    else:
        assert isinstance(out, dict)


def test_list_items_merge_as_mmcv_and_refusals_name_the_option():
    out = oss.merge_options(CFG, ["custom_hooks.0.x=5", "custom_hooks.0.y=(1,2)"])
    assert out["custom_hooks"] == [{"type": "A", "x": 5, "y": (1, 2)}, "s"]
    out = oss.merge_options(CFG, ["min_lr._delete_=True", "min_lr.x=1"])  # replaced, as mmcv
    assert out["min_lr"] == {"x": 1}
    with pytest.raises(oss.ConfigError, match=r"'custom_hooks.1.x=1': custom_hooks.1 is 's' "
                                              r"\(str\), not a dict"):
        oss.merge_options(CFG, ["custom_hooks.1.x=1"])
    with pytest.raises(oss.ConfigError, match=r"'empty.0.x=1': index 0 is past the end of the "
                                              r"list 'empty' \(items none: it is empty\)"):
        oss.merge_options(CFG, ["empty.0.x=1"])
    # the dict form (nested dicts), as the library's own callers use it
    out = oss.merge_options(CFG, {"optimizer": {"betas": {"_delete_": True, "a": 1}}})
    assert out["optimizer"]["betas"] == {"a": 1}
    with pytest.raises(oss.ConfigError, match=r"optimizer=\{'betas': \{'a': 1\}\}.*: "
                                              r"optimizer.betas is \(0.9, 0.99\) \(tuple\)"):
        oss.merge_options(CFG, {"optimizer": {"betas": {"a": 1}}})
    assert CFG["custom_hooks"][0] == {"type": "A", "x": [1, 2]}  # the input is not modified


def test_custom_hooks_one_dict_is_refused_as_mmselfsup_refuses_it():
    """mmcv's ``register_custom_hooks`` would wrap a lone dict in a list, but MMSelfSup 0.x's
    ``apis/train.py`` asserts a list first: a SimSiamHook written as one dict never trains
    upstream, and here it used to be silently dropped. It is refused, naming the key, on
    both sides."""
    import os

    import numpy as np
    import torch

    import torch_ref
    from optax_selfsup.demo import DEMO_MODEL
    from optax_selfsup.names import nest_names

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = oss.load_config(os.path.join(root, "configs", "selfsup", "simsiam",
                                       "simsiam_resnet50_8xb32-coslr-100e_in1k.py"))
    one = {**cfg, "custom_hooks": cfg["custom_hooks"][0]}
    params = nest_names({k: np.zeros(s, np.float32) for k, s in DEMO_MODEL.items()})
    assert oss.plan_optimizer(cfg, params, steps_per_epoch=3).lr_override is not None
    with pytest.raises(oss.ConfigError, match=r"custom_hooks must be a list of hook dicts "
                                              r"\(upstream asserts a list\), got dict"):
        oss.plan_optimizer(one, params, steps_per_epoch=3)
    named = [(k, torch.nn.Parameter(torch.zeros(s))) for k, s in DEMO_MODEL.items()]
    with pytest.raises(AssertionError, match="custom_hooks expect list type"):
        torch_ref.build(one, named, steps_per_epoch=3)
