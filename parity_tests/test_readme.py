"""README.md runs as written: its ```python blocks in order in one namespace, and the
optax-selfsup commands of its ```bash blocks (pip lines are skipped)."""

import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _blocks(language: str) -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_points_only_inside_the_repository():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    assert "../" not in text and "SPEC" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert os.path.exists(os.path.join(ROOT, target)), target


def test_python_blocks_run_in_order(tmp_path):
    code = "\n\n".join(_blocks("python"))
    assert "oss.build_optimizer" in code
    script = tmp_path / "readme.py"
    script.write_text(code)
    # a fresh interpreter: the README registers an optimizer, which a test process may already have
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[15]" in result.stdout  # the accumulation example's update iteration


def test_bash_commands_run(tmp_path):
    commands = [line.split("#")[0].strip() for block in _blocks("bash")
                for line in block.splitlines()]
    commands = [c for c in commands if c.startswith("optax-selfsup ")]
    assert {c.split()[1] for c in commands} >= {"show", "describe", "parity", "plot"}
    os.symlink(os.path.join(ROOT, "configs"), tmp_path / "configs")
    for command in commands:
        argv = [sys.executable, "-m", "optax_selfsup", *shlex.split(command)[1:]]
        result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=600)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
    assert (tmp_path / "schedule.png").stat().st_size > 10_000
