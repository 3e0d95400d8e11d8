"""Write docs/api.md: every public name of ``optax_selfsup`` with its signature and
docstring, grouped by where it sits in the data flow (config -> rules -> per-leaf
hyperparameters -> one chain -> state and checkpoints).

    python tools/api_reference.py          # rewrite docs/api.md
    python tools/api_reference.py --check  # exit 1 when docs/api.md is out of date

parity_tests/test_api_reference.py runs the check and refuses a public function or
class without a docstring.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "api.md")

# (title, the subpackages / modules whose names it holds), in data-flow order
SECTIONS = [
    ("Config files", ("config",)),
    ("Building the optimizer", ("builder",)),
    ("Parameter names and per-parameter rules", ("names", "paramwise", "pytrees")),
    ("Schedules", ("schedules",)),
    ("Optimizers (torch.optim, LARS, Lamb)", ("optimizers",)),
    ("Transformations", ("transforms",)),
    ("Reading the optimizer state", ("state",)),
    ("Checkpoints", ("checkpoint",)),
    ("Multi-tensor (flat) layout", ("layout",)),
    ("Errors", ("errors",)),
]

# constants have no docstring of their own
CONSTANTS = {
    "LR_POLICIES": "the mmcv 1.x ``lr_config`` policies, name -> schedule factory "
                   "(``oss.LR_POLICIES.keys()`` lists them)",
    "MOMENTUM_POLICIES": "the mmcv 1.x ``momentum_config`` policies, name -> schedule "
                         "factory",
    "OPTIMIZERS": "the optimizer types a config may name, type -> update rule "
                  "(``register_optimizer`` adds one)",
    "REQUIRED": "the marker of a hyperparameter without a default (torch's ``required``)",
}


def _section(obj, name: str) -> str:
    module = getattr(obj, "__module__", "") or ""
    if name in CONSTANTS:
        module = "optax_selfsup.registry" if name != "REQUIRED" else "optax_selfsup.optimizers"
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else ""
    for title, owners in SECTIONS:
        if first in owners:
            return title
    if first in ("registry",):
        return "Optimizers (torch.optim, LARS, Lamb)"
    return "Other"


def _signature(name: str, obj) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return name
    if inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields"):
        sig = "(" + ", ".join(obj._fields) + ")"
    return f"{name}{sig}"


def missing_docstrings() -> list[str]:
    import optax_selfsup as oss

    missing = []
    for name in oss.__all__:
        obj = getattr(oss, name)
        if name in CONSTANTS:
            continue
        doc = inspect.getdoc(obj) or ""
        generated = inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")
        if not doc.strip() or generated:
            missing.append(name)
    return missing


def render() -> str:
    import optax_selfsup as oss

    grouped: dict[str, list[str]] = {}
    for name in sorted(oss.__all__, key=str.lower):
        grouped.setdefault(_section(getattr(oss, name), name), []).append(name)
    out = ["# API reference", "",
           "Every public name of `optax_selfsup` (`import optax_selfsup as oss`), with its",
           "signature and docstring, in the order a config flows through the package.",
           "Generated from the docstrings by `python tools/api_reference.py`; do not edit",
           "by hand.", ""]
    titles = [t for t, _ in SECTIONS] + ["Other"]
    for title in titles:
        names = grouped.get(title)
        if not names:
            continue
        out += [f"## {title}", ""]
        for name in names:
            obj = getattr(oss, name)
            if name in CONSTANTS:
                out += [f"### `{name}`", "", CONSTANTS[name] + ".", ""]
                continue
            kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else ""
            out += [f"### `{name}`", "", "```text",
                    f"{'class ' if kind == 'class' else ''}{_signature(name, obj)}", "```", ""]
            doc = inspect.getdoc(obj) or ""
            out += [doc, ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/api.md differs from the docstrings")
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    text = render()
    if args.check:
        with open(PAGE, encoding="utf-8") as f:
            if f.read() != text:
                print("docs/api.md is out of date: run python tools/api_reference.py",
                      file=sys.stderr)
                return 1
        return 0
    with open(PAGE, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
