"""Packaging: the recipes travel with the package and are found by their path under
configs/ from any directory; every import the package makes is a declared dependency;
``oss.__version__``. The slow test builds a wheel, installs it in a fresh venv and runs
it from another directory."""

from __future__ import annotations

import ast
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time

import pytest

import optax_selfsup as oss
from optax_selfsup import cli
from optax_selfsup.config.files import PACKAGED_CONFIGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMCLR = "selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k"


def _pyproject() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        return f.read()


def _recipes() -> list[str]:
    root = os.path.join(ROOT, "configs")
    return sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "**", "*"),
                                                              recursive=True)
                  if os.path.isfile(p))


# ---------------------------------------------------------------- configs by their path

def test_packaged_configs_are_the_repository_configs():
    assert os.path.samefile(PACKAGED_CONFIGS, os.path.join(ROOT, "configs"))
    assert len(_recipes()) >= 20


def test_a_recipe_loads_by_its_path_under_configs_from_any_directory(tmp_path, monkeypatch):
    want = oss.load_config(os.path.join(ROOT, "configs", SIMCLR + ".py"))
    monkeypatch.chdir(tmp_path)
    for path in (f"configs/{SIMCLR}.py", f"configs/{SIMCLR}", f"{SIMCLR}.py", SIMCLR,
                 f"./configs/{SIMCLR}.py"):
        assert oss.load_config(path) == want, path
    # a base of a packaged recipe is found next to it, an MMEngine-style recipe too
    assert oss.load_config("configs/_base_/schedules/lars_coslr-200e_in1k")["optimizer"]


def test_a_file_that_exists_wins_over_the_packaged_recipe(tmp_path, monkeypatch):
    mine = tmp_path / "configs" / (SIMCLR + ".py")
    mine.parent.mkdir(parents=True)
    mine.write_text("optimizer = dict(type='SGD', lr=123.0)\n")
    monkeypatch.chdir(tmp_path)
    assert oss.load_config(f"configs/{SIMCLR}.py") == {"optimizer": {"type": "SGD", "lr": 123.0}}
    (tmp_path / "mine.py").write_text("x = 1\n")
    assert oss.load_config("mine") == {"x": 1}  # .py added in the working directory too


def test_not_found_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(oss.ConfigError) as err:
        oss.load_config("configs/selfsup/simclr/nope")
    text = str(err.value)
    assert text.startswith("config file not found: 'configs/selfsup/simclr/nope'; looked at ")
    for where in (tmp_path / "configs/selfsup/simclr/nope",
                  tmp_path / "configs/selfsup/simclr/nope.py",
                  os.path.join(PACKAGED_CONFIGS, "selfsup", "simclr", "nope.py")):
        assert str(where) in text
    with pytest.raises(oss.ConfigError, match=r"looked at /nowhere/x\.py$"):
        oss.load_config("/nowhere/x.py")  # an absolute path is only itself
    with pytest.raises(oss.ConfigError, match="is a directory, not a config file"):
        oss.load_config("configs/selfsup")


def test_the_cli_finds_packaged_recipes_from_another_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["show", SIMCLR, "--cfg-options", "optimizer.lr=0.5"]) == 0
    out = capsys.readouterr().out
    assert "'LARS'" in out and "'lr': 0.5" in out


def test_package_data_globs_cover_every_recipe():
    """The wheel ships configs/ by the globs of [tool.setuptools.package-data]."""
    data = re.search(r"^\[tool\.setuptools\.package-data\]\n(.*?)(?=^\[)", _pyproject(),
                     re.S | re.M).group(1)
    patterns = re.findall(r'"configs/\*\*/\*(\.\w+)"', data)
    assert patterns, data
    missed = [r for r in _recipes() if os.path.splitext(r)[1] not in patterns]
    assert not missed


# ---------------------------------------------------------------- dependencies, version

def _declared() -> tuple[set[str], dict[str, set[str]]]:
    text = _pyproject()

    def names(block):
        return {re.split(r"[<>=!~;\[ ]", r.strip())[0].lower().replace("_", "-")
                for r in re.findall(r'^\s*"([^"]+)"', block, re.M)}

    base = names(re.search(r"^dependencies = \[\n(.*?)^\]", text, re.S | re.M).group(1))
    extras = {m.group(1): names(m.group(2)) for m in
              re.finditer(r"^(\w+) = \[(.*?)\]$", re.search(
                  r"^\[project\.optional-dependencies\]\n(.*?)(?=^\[)", text,
                  re.S | re.M).group(1), re.S | re.M)}
    return base, extras


def _imports(folder: str) -> dict[str, set[str]]:
    """Top-level third-party module -> the files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in glob.glob(os.path.join(ROOT, folder, "**", "*.py"), recursive=True):
        if os.path.join(folder, "configs") in os.path.relpath(path, ROOT):
            continue  # recipes (data), not code
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("optax_selfsup",
                                                                       "torch_ref"):
                    found.setdefault(top, set()).add(os.path.relpath(path, ROOT))
    return found


# modules reached only through an extra; cli/common.py's EXTRAS names the extra in the
# message when one is missing
OPTIONAL = {"torch": "torch", "matplotlib": "plot"}


def test_every_import_of_the_package_is_a_declared_dependency():
    from importlib.metadata import packages_distributions

    base, extras = _declared()
    dists = packages_distributions()
    missing = []
    for folder in ("optax_selfsup", "torch_ref"):
        for module, files in sorted(_imports(folder).items()):
            provided = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
            declared = base | (extras[OPTIONAL[module]] if module in OPTIONAL else set())
            if not provided & declared:
                missing.append(f"{module} ({sorted(provided)}), imported by {sorted(files)}")
    assert not missing, missing
    assert {"orbax-checkpoint", "rich"} <= base


def test_version_is_the_pyproject_version_without_importing_jax():
    want = re.search(r'^version = "([^"]+)"', _pyproject(), re.M).group(1)
    result = subprocess.run(
        [sys.executable, "-c", "import sys, optax_selfsup as oss\n"
         "print(oss.__version__, 'jax' in sys.modules)"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.stdout.split() == [want, "False"], result.stderr
    assert oss.__version__ == want


# ---------------------------------------------------------------- a wheel in a fresh venv

def _copy_source(dest):
    """What the wheel is built from, without build outputs in the working tree."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, name), dest / name)
    for name in ("optax_selfsup", "torch_ref", "configs"):
        shutil.copytree(os.path.join(ROOT, name), dest / name, symlinks=True, ignore=ignore)


@pytest.mark.slow
def test_wheel_ships_the_recipes_and_runs_from_another_directory(tmp_path):
    """``pip wheel`` -> a fresh venv (the dependencies from this environment through a
    .pth) -> load recipes by their configs/ path and run the CLI from an empty folder."""
    pytest.importorskip("setuptools")
    start = time.perf_counter()
    src, dist, venv, work = (tmp_path / n for n in ("src", "dist", "venv", "work"))
    for d in (src, work):
        d.mkdir()
    _copy_source(src)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist),
                    str(src)], check=True, capture_output=True)
    (wheel,) = glob.glob(str(dist / "*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index",
                    "--no-compile", wheel], check=True, capture_output=True)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True,
                          check=True).stdout.strip()
    with open(os.path.join(site, "_deps.pth"), "w") as f:  # jax, optax, ... from here
        f.write(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        "import importlib.metadata, os, optax_selfsup as oss\n"
        "assert os.path.dirname(oss.__file__).startswith(os.environ['SITE']), oss.__file__\n"
        "assert oss.__version__ == importlib.metadata.version('optax_selfsup')\n"
        f"a = oss.load_config('configs/{SIMCLR}.py')\n"
        f"b = oss.load_config('{SIMCLR}')\n"
        "assert a == b and a['optimizer']['type'] == 'LARS', a\n"
        "print(len(os.listdir(os.path.join(os.path.dirname(oss.__file__), 'configs',"
        " 'selfsup'))), oss.__version__)\n")
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=work,
                            env={**env, "SITE": site})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == str(len(os.listdir(os.path.join(ROOT, "configs",
                                                                       "selfsup"))))
    shown = subprocess.run([python, "-m", "optax_selfsup", "show", f"configs/{SIMCLR}.py"],
                           capture_output=True, text=True, cwd=work, env=env)
    assert shown.returncode == 0 and "'LARS'" in shown.stdout, shown.stderr
    missing = subprocess.run([python, "-m", "optax_selfsup", "show", "configs/nope.py"],
                             capture_output=True, text=True, cwd=work, env=env)
    assert missing.returncode == 2
    assert os.path.join(site, "optax_selfsup", "configs", "nope.py") in missing.stderr
    assert sorted(os.listdir(work)) == []
    print(f"wheel round trip: {time.perf_counter() - start:.1f}s")
