#!/usr/bin/env python
"""Vendor the upstream MMSelfSup / MMPretrain config files and MMEngine's view of each.

Three steps, each rerunnable:

1. get the wheels of mmselfsup 0.11.0, mmselfsup 1.0.0 and mmpretrain 1.2.0
   (``pip download --no-deps`` into a temporary folder, or ``--wheels DIR``);
2. extract every config file of each wheel's ``<pkg>/.mim/configs/`` unmodified
   (plus the wheel's LICENSE) into ``parity_tests/data/upstream_configs/<dist>-<version>/``;
3. load every extracted ``.py`` config with the real MMEngine
   (``mmengine.config.Config.fromfile``) and write what the optimiser needs of each
   to ``parity_tests/data/upstream_views.json``, then print a summary and write
   ``parity_tests/data/upstream_configs/README.md``.

Run from the repository root, in an environment with mmengine (or mmengine-lite)
0.10.7, ``setuptools<81`` (MMEngine resolves ``mmcls::`` bases through
``pkg_resources``) and none of mmcls / mmdet / mmsegmentation installed: the views
are those of MMEngine alone, so a config whose ``_base_`` is ``mmcls::...`` is
recorded with the error MMEngine raises.

    python tools/upstream_configs.py                     # download, extract, load, write
    python tools/upstream_configs.py --wheels /path      # use wheels already downloaded
    python tools/upstream_configs.py --no-extract        # reload the extracted files only
    python tools/upstream_configs.py --check             # exit 1 if the data is stale
    python tools/upstream_configs.py --check --wheels /path   # + files == the wheels' files
    python tools/upstream_configs.py --no-extract --inventory   # + every type used by 1.x

JSON encoding of the views (decoded by ``parity_tests/upstream_data.py``): a tuple
is ``{"__tuple__": [...]}``, a float JSON cannot hold is ``{"__float__": "inf"}``
(``"-inf"``, ``"nan"``), any other value (a class, a function, a lazy-import object)
is ``{"__repr__": "..."}``. Dict key order is MMEngine's.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

DISTS = (("mmselfsup", "0.11.0"), ("mmselfsup", "1.0.0"), ("mmpretrain", "1.2.0"))
REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "parity_tests" / "data"
CONFIG_SUFFIXES = (".py", ".json", ".yaml", ".yml")
SKIP_NAMES = ("README.md", "metafile.yml", "metafile.yaml")
MMENGINE_VERSION = "0.10.7"
# The packages the configs' external ``_base_`` files come from (``mmcls::``, ``mmdet::``,
# ``mmseg::``): installed, they would make MMEngine load configs that it refuses alone.
# (mmpretrain / mmselfsup make no difference: no config has an ``mmpretrain::`` base.)
MUST_BE_ABSENT = ("mmcls", "mmdet", "mmsegmentation")

# What a view keeps, in this order (a key absent from the config is absent from the view).
KEYS_0X = ("optimizer", "optimizer_config", "lr_config", "momentum_config", "runner", "fp16",
           "custom_hooks", "custom_imports")
KEYS_1X = ("default_scope", "optim_wrapper", "optimizer", "param_scheduler", "train_cfg",
           "auto_scale_lr", "custom_hooks", "custom_imports")
BACKBONE_KEYS = ("type", "arch", "depth", "num_layers", "layers", "depths", "frozen_stages")
# The optimisation setting of a config, for the distinct-settings count.
SETTING_0X = ("optimizer", "optimizer_config", "lr_config", "momentum_config", "runner", "fp16",
              "custom_hooks")
SETTING_1X = ("optim_wrapper", "param_scheduler", "train_cfg")


def generation(relpath: str) -> str:
    """'0.x' for the mmcv 1.x generation (mmselfsup 0.11.0), '1.x' for MMEngine's."""
    return "0.x" if relpath.split("/", 1)[0].split("-")[-1].startswith("0.") else "1.x"


# ----------------------------------------------------------------------------- wheels


def download_wheels(dest: Path) -> None:
    for dist, version in DISTS:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--dest", str(dest), f"{dist}=={version}"]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def find_wheel(wheels: Path, dist: str, version: str) -> Path:
    found = sorted(wheels.glob(f"{dist}-{version}-*.whl"))
    if not found:
        raise SystemExit(f"no {dist}-{version}-*.whl in {wheels}")
    return found[0]


def is_config_file(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base not in SKIP_NAMES and name.endswith(CONFIG_SUFFIXES)


def extract(wheel: Path, dest: Path) -> int:
    """Extract the wheel's ``.mim/configs`` config files (and LICENSE) byte for byte."""
    if dest.exists():
        shutil.rmtree(dest)
    count = 0
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir():
                continue
            if "/.mim/configs/" in name:
                rel = name.split("/.mim/configs/", 1)[1]
                if not is_config_file(rel):
                    continue
            elif re.fullmatch(r"[^/]+\.dist-info/LICENSE(\.txt)?", name):
                rel = "LICENSE"
            else:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            count += rel != "LICENSE"
    return count


def compare_with_wheels(wheels: Path, root: Path) -> list[Path]:
    """The vendored files that differ from (or are missing in, or extra to) the wheels'."""
    differ = []
    with tempfile.TemporaryDirectory() as tmp:
        for dist, version in DISTS:
            fresh = Path(tmp) / f"{dist}-{version}"
            extract(find_wheel(wheels, dist, version), fresh)
            kept = root / f"{dist}-{version}"
            names = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
            names |= {p.relative_to(kept) for p in kept.rglob("*") if p.is_file()}
            for name in sorted(names):
                a, b = fresh / name, kept / name
                if not (a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()):
                    differ.append(b)
    return differ


# ----------------------------------------------------------------------------- views


def encode(value):
    """A JSON-able copy of a loaded config value (tuples, odd floats, objects tagged)."""
    if isinstance(value, dict):
        out = {}
        for k, v in dict.items(value):  # dict.items: never builds a lazy object
            if not isinstance(k, str):
                raise TypeError(f"non-string config key {k!r}")
            out[k] = encode(v)
        return out
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"__repr__": repr(value)}


def is_lazy(path: Path, memo: dict) -> bool:
    """Whether ``path`` or a local ``_base_`` of it is a lazy-import config in MMEngine's eyes."""
    from mmengine.config import Config

    key = os.path.normpath(path)
    if key in memo:
        return memo[key]
    memo[key] = False
    lazy = False
    if path.suffix == ".py" and path.exists():
        try:
            lazy = Config._is_lazy_import(str(path))
            bases = [] if lazy else Config._get_base_files(str(path))
        except Exception:  # a file MMEngine cannot parse is reported by the load itself
            bases = []
        for base in bases:
            if "::" not in base and is_lazy(path.parent / base, memo):
                lazy = True
    memo[key] = lazy
    return lazy


def error_text(exc: BaseException, root: Path) -> str:
    msg = str(exc)
    if isinstance(exc, KeyError) and exc.args:
        msg = repr(exc.args[0])
    first = msg.splitlines()[0] if msg else ""
    first = first.replace(str(root) + os.sep, "")
    first = re.sub(r"/tmp/[^\s'\"]+", "<tmp>", first)
    return f"{type(exc).__name__}: {first}"


def model_facts(model) -> dict:
    if not isinstance(model, dict):
        return encode(model)
    facts = {}
    if "type" in model:
        facts["type"] = encode(model["type"])
    backbone = model.get("backbone")
    if isinstance(backbone, dict):
        facts["backbone"] = {k: encode(backbone[k]) for k in BACKBONE_KEYS if k in backbone}
    elif "backbone" in model:
        facts["backbone"] = encode(backbone)
    for part in ("neck", "head"):
        if part not in model:
            continue
        sub = model[part]
        if isinstance(sub, dict):
            facts[part] = {"type": encode(sub.get("type"))}
        elif isinstance(sub, (list, tuple)):
            facts[part] = [{"type": encode(s.get("type"))} if isinstance(s, dict) else encode(s)
                           for s in sub]
        else:
            facts[part] = encode(sub)
    return facts


def load_view(path: Path, relpath: str, root: Path, lazy_memo: dict) -> dict:
    """MMEngine's loaded view of one config file (or the error it raises)."""
    from mmengine.config import Config

    view: dict = {}
    if is_lazy(path, lazy_memo):
        view["lazy_import"] = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # custom_imports name the upstream package's own modules; importing them is not
            # part of reading the config (and would fail here), so it is not done.
            cfg = Config.fromfile(str(path), import_custom_modules=False)
    except Exception as exc:  # noqa: BLE001 - every failure is data
        view["error"] = error_text(exc, root)
        return view
    raw = copy.deepcopy(dict(dict.items(cfg._cfg_dict)))
    imported = getattr(cfg, "_imported_names", set())
    raw = {k: v for k, v in raw.items() if k not in imported}
    keys = KEYS_0X if generation(relpath) == "0.x" else KEYS_1X
    for key in keys:
        if key in raw:
            view[key] = encode(raw[key])
    if "model" in raw:
        view["model"] = model_facts(raw["model"])
    return view


def collect_views(root: Path) -> dict:
    lazy_memo: dict = {}
    views = {}
    for dist, version in DISTS:
        dist_dir = root / f"{dist}-{version}"
        files = sorted(p for p in dist_dir.rglob("*.py"))
        for path in files:
            rel = path.relative_to(root).as_posix()
            views[rel] = load_view(path, rel, root, lazy_memo)
    return dict(sorted(views.items()))


def dump_views(views: dict) -> str:
    """One config per line, keys sorted by path, values in MMEngine's key order."""
    lines = [f"{json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in views.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


# ----------------------------------------------------------------------------- summary


SCOPES = {"mmsegmentation": "mmseg"}  # package MMEngine names -> the scope a _base_ uses


def error_cause(error: str) -> str:
    m = re.match(r"ModuleNotFoundError: (\w+) is not installed", error)
    if m:
        package = m.group(1)
        return f"`_base_` from `{SCOPES.get(package, package)}::` ({package} not installed)"
    if "lazy_import" in error:
        return "lazy-import `_base_` under a plain config (RuntimeError)"
    return error


def summarize(views: dict) -> dict:
    """Counts per dist (in DISTS order) from the encoded views; see summary_text."""
    out: dict = {f"{d}-{v}": {"files": 0, "loaded": 0, "errors": Counter(), "lazy": 0,
                              "with_optimizer": 0, "settings": set()} for d, v in DISTS}
    for rel, view in views.items():
        s = out[rel.split("/", 1)[0]]
        gen = generation(rel)
        s["files"] += 1
        s["lazy"] += bool(view.get("lazy_import"))
        if "error" in view:
            s["errors"][error_cause(view["error"])] += 1
            continue
        s["loaded"] += 1
        opt_key = "optimizer" if gen == "0.x" else "optim_wrapper"
        if opt_key not in view:
            continue
        s["with_optimizer"] += 1
        keys = SETTING_0X if gen == "0.x" else SETTING_1X
        setting = [view.get(k) for k in keys]
        if gen == "1.x":
            setting.append(view.get("model", {}).get("backbone"))
        s["settings"].add(json.dumps(setting))
    return out


def _has_key(value, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_has_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_has_key(v, key) for v in value)
    return False


def oddities(views: dict) -> dict:
    """Loadable 1.x files that the real Runner would refuse, or that hide a typo."""
    odd: dict = defaultdict(list)
    for rel, v in views.items():
        if generation(rel) != "1.x" or "error" in v:
            continue
        tc = v.get("train_cfg")
        if "optim_wrapper" in v and isinstance(tc, dict):
            if "type" in tc and "by_epoch" in tc:
                odd["`train_cfg` with both `type` and `by_epoch` (Runner: RuntimeError)"] \
                    .append(rel)
            elif "type" not in tc and "by_epoch" not in tc:
                odd["`train_cfg` with neither `type` nor `by_epoch` (Runner: KeyError)"].append(rel)
        if "optim_wrapper" not in v and ("optimizer" in v or "param_scheduler" in v):
            odd["`optimizer` / `param_scheduler` but no `optim_wrapper`"].append(rel)
        if _has_key(v, "_delete"):
            odd["`_delete` (no trailing underscore): an ordinary key, the base is merged"] \
                .append(rel)
    return odd


def summary_text(views: dict) -> str:
    """The Markdown summary written to the README and printed by the tool."""
    stats = summarize(views)
    rows = ["| dist | files | loaded | not loaded | lazy import | with an optimizer | "
            "distinct settings |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    causes = []
    total = {"files": 0, "loaded": 0, "failed": 0, "lazy": 0, "with_optimizer": 0,
             "settings": set()}
    for dist, s in stats.items():
        failed = sum(s["errors"].values())
        rows.append(f"| {dist} | {s['files']} | {s['loaded']} | {failed} | {s['lazy']} | "
                    f"{s['with_optimizer']} | {len(s['settings'])} |")
        for cause, n in sorted(s["errors"].items(), key=lambda kv: (-kv[1], kv[0])):
            causes.append(f"- {dist}: {n} × {cause}")
        if generation(dist + "/") == "1.x":
            for key in ("files", "loaded", "lazy", "with_optimizer"):
                total[key] += s[key]
            total["failed"] += failed
            total["settings"] |= s["settings"]
    rows.append(f"| MMEngine generation (1.x) | {total['files']} | {total['loaded']} | "
                f"{total['failed']} | {total['lazy']} | {total['with_optimizer']} | "
                f"{len(total['settings'])} |")
    foot = ["", "Not loaded, by cause:", "", *(causes or ["- none"]), "",
            "Loaded, but odd (1.x):", ""]
    for what, files in oddities(views).items():
        foot.append(f"- {what}: {', '.join(f'`{f}`' for f in files)}")
    return "\n".join(rows + foot) + "\n"


def inventory(views: dict) -> str:
    """Every optimiser-related type / key used by the loadable 1.x configs (for scoping)."""
    inv: dict = defaultdict(Counter)

    def typ(d):
        return json.dumps(d.get("type")) if isinstance(d, dict) else json.dumps(d)

    for rel, v in views.items():
        if generation(rel) != "1.x" or "error" in v:
            continue
        ow = v.get("optim_wrapper")
        if isinstance(ow, dict):
            inv["optim_wrapper.type"][typ(ow)] += 1
            inv["optimizer.type"][typ(ow.get("optimizer"))] += 1
            inv["constructor"][json.dumps(ow.get("constructor"))] += 1
            for k in ow:
                inv["optim_wrapper keys"][k] += 1
            for k in (ow.get("optimizer") or {}):
                inv["optimizer keys"][k] += 1
            pw = ow.get("paramwise_cfg")
            if isinstance(pw, dict):
                for k, val in pw.items():
                    inv["paramwise_cfg keys"][k] += 1
                    if k == "custom_keys" and isinstance(val, dict):
                        for ck in val.values():
                            for kk in (ck or {}):
                                inv["custom_keys entry keys"][kk] += 1
            inv["clip_grad"][json.dumps(ow.get("clip_grad"), sort_keys=True)] += 1
        ps = v.get("param_scheduler")
        for sch in (ps if isinstance(ps, list) else [ps] if ps is not None else []):
            inv["param_scheduler.type"][typ(sch)] += 1
            if isinstance(sch, dict):
                for k in sch:
                    inv["param_scheduler keys"][k] += 1
        tc = v.get("train_cfg")
        if isinstance(tc, dict):
            inv["train_cfg shape"][json.dumps(sorted(tc))] += 1
        for hook in v.get("custom_hooks") or []:
            inv["custom_hooks.type"][typ(hook)] += 1
        if "optim_wrapper" in v:
            bb = v.get("model", {}).get("backbone")
            if isinstance(bb, dict):
                facts = {k: bb[k] for k in ("type", "arch", "depth", "num_layers") if k in bb}
                inv["backbone"][json.dumps(facts)] += 1
        inv["default_scope"][json.dumps(v.get("default_scope"))] += 1
    lines = []
    for section, counter in inv.items():
        lines.append(f"## {section}")
        for key, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {n:4d}  {key}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- README

README_HEAD = """\
# Upstream config files (test data)

Every config file of three OpenMMLab wheels, kept **unmodified** as test data:
MMSelfSup 0.11.0 (the mmcv 1.x generation), MMSelfSup 1.0.0 and MMPretrain 1.2.0 (the
MMEngine generation). They are the files of each wheel's `<pkg>/.mim/configs/` folder
(`.py`, and any `.json`/`.yaml` a config could use as a base; `README.md` and
`metafile.yml` are left out), with the wheel's `LICENSE`. They are Apache-2.0 files of
OpenMMLab (<https://github.com/open-mmlab/mmselfsup>,
<https://github.com/open-mmlab/mmpretrain>), copyright their authors, redistributed here
under that license.

`../upstream_views.json` holds what the real MMEngine ({mmengine}) makes of each `.py`
file: `Config.fromfile(path, import_custom_modules=False)` (a `custom_imports` names
the upstream package's own modules; importing them is not part of reading the file),
taken straight after loading, before anything builds from it. Regenerate both
(downloads the wheels with `pip download --no-deps`) from the repository root with

    python tools/upstream_configs.py                  # or --wheels DIR, --no-extract
    python tools/upstream_configs.py --check          # exit 1 if stale (+ --wheels DIR:
                                                      # the files are the wheels')

in an environment with mmengine(-lite) {mmengine}, `setuptools<81` (MMEngine
resolves `mmcls::` bases through `pkg_resources`) and none of {absent}
installed. Read it with `parity_tests/upstream_data.py` (`load_views()`,
`config_path(relpath)`).

## upstream_views.json

One line per config file, key = path relative to this folder
(`mmselfsup-1.0.0/selfsup/simclr/...py`). The value is either
`{{"error": "<ExceptionType>: <first line of the message>"}}` (paths relative to this
folder) or the view: the keys below that the loaded config has, values as MMEngine
holds them (`_base_` merged, `_delete_` applied, dict keys in MMEngine's order; the
twins configs' `_delete=True` typo stays an ordinary key, as in MMEngine):

- 1.x (mmselfsup-1.0.0, mmpretrain-1.2.0): `default_scope`, `optim_wrapper`,
  `optimizer` (the top-level variable), `param_scheduler`, `train_cfg`,
  `auto_scale_lr`, `custom_hooks`, `custom_imports`;
- 0.x (mmselfsup-0.11.0): `optimizer`, `optimizer_config`, `lr_config`,
  `momentum_config`, `runner`, `fp16`, `custom_hooks`, `custom_imports`;
- both: `model` = `{{"type", "backbone": {{"type", "arch", "depth", "num_layers",
  "layers", "depths", "frozen_stages"}}, "neck": {{"type"}}, "head": {{"type"}}}}`
  (the keys present; a list of necks is a list);
- `"lazy_import": true` (also next to an `error`) when MMEngine takes the file or one
  of its `_base_` files for a new-style lazy-import config (`read_base()`, or any
  import of a non-builtin module): a loader of plain configs should refuse it clearly.

Encoding: JSON cannot tell a tuple from a list, and the difference matters (Adam
`betas`), so a tuple is `{{"__tuple__": [...]}}`; a non-finite float is
`{{"__float__": "inf"}}`; any value JSON cannot hold (a class, a function, a lazy
object) is `{{"__repr__": "..."}}`. `load_views()` turns `__tuple__` / `__float__` back.

## Summary

"with an optimizer": 0.x has `optimizer`, 1.x has `optim_wrapper` (loaded files only).
"distinct settings": distinct JSON of the loaded files with an optimizer of
(`optim_wrapper`, `param_scheduler`, `train_cfg`, backbone facts) for 1.x and of
(`optimizer`, `optimizer_config`, `lr_config`, `momentum_config`, `runner`, `fp16`,
`custom_hooks`) for 0.x.

"""


def readme_text(views: dict) -> str:
    head = README_HEAD.format(mmengine=MMENGINE_VERSION,
                              absent=", ".join(MUST_BE_ABSENT))
    return head + summary_text(views)


# ----------------------------------------------------------------------------- main


def check_environment(force: bool) -> None:
    import mmengine
    from mmengine.utils import is_installed

    problems = []
    if mmengine.__version__ != MMENGINE_VERSION:
        problems.append(f"mmengine {mmengine.__version__}, not {MMENGINE_VERSION}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pkg_resources  # noqa: F401
    except ImportError:
        problems.append("no pkg_resources (setuptools<81 needed)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        present = [p for p in MUST_BE_ABSENT if is_installed(p)]
    if present:
        problems.append(f"installed: {', '.join(present)}")
    if problems:
        msg = "environment differs from the one the views are defined for: " + "; ".join(problems)
        if not force:
            raise SystemExit(msg + " (--force to go on)")
        print("warning:", msg, file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog="See parity_tests/data/upstream_configs/README.md for the output format.")
    parser.add_argument("--wheels", type=Path,
                        help="folder with the three wheels (default: pip download into a "
                             "temporary folder)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help="where upstream_configs/ and upstream_views.json go "
                             "(default: %(default)s)")
    parser.add_argument("--no-extract", action="store_true",
                        help="keep the extracted files, only reload them")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if upstream_views.json or the README "
                             "differ from a fresh load of the extracted files (with "
                             "--wheels, also if the extracted files differ from the wheels')")
    parser.add_argument("--inventory", action="store_true",
                        help="also print every optimiser / scheduler / wrapper / backbone "
                             "type the loadable 1.x configs use")
    parser.add_argument("--force", action="store_true",
                        help="go on in an environment other than the reference one")
    args = parser.parse_args(argv)

    check_environment(args.force)
    root = args.data_dir / "upstream_configs"
    views_file = args.data_dir / "upstream_views.json"
    if not (args.no_extract or args.check):
        with tempfile.TemporaryDirectory() as tmp:
            wheels = args.wheels
            if wheels is None:
                wheels = Path(tmp)
                download_wheels(wheels)
            for dist, version in DISTS:
                wheel = find_wheel(wheels, dist, version)
                n = extract(wheel, root / f"{dist}-{version}")
                print(f"{wheel.name}: {n} config files -> {root / f'{dist}-{version}'}")

    views = collect_views(root.resolve())
    text = dump_views(views)
    readme = readme_text(views)
    if args.check:
        stale = [p for p, t in ((views_file, text), (root / "README.md", readme))
                 if not p.exists() or p.read_text() != t]
        if args.wheels is not None:
            stale += compare_with_wheels(args.wheels, root)
        for p in stale:
            print(f"stale: {p}")
        return 1 if stale else 0
    views_file.write_text(text)
    (root / "README.md").write_text(readme)
    print(f"wrote {views_file} ({len(views)} configs) and {root / 'README.md'}\n")
    print(summary_text(views))
    if args.inventory:
        print(inventory(views))
    return 0


if __name__ == "__main__":
    sys.exit(main())
