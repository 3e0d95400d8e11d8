"""docs/*.md pages run as written: each page's ```python blocks in order, as one script in
a fresh interpreter. Blocks opened with ```python fragment are excerpts: they are only
compiled. What the script prints must appear in the page (whitespace aside, the
temporary directory spelt /tmp/tmpa1b2c3), so the messages shown are the real ones."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["docs/checkpoints.md"]  # pages whose python blocks form one runnable script


def blocks(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        text = f.read()
    return text, re.findall(r"^```python( fragment)?\n(.*?)^```", text, flags=re.S | re.M)


def _squash(text):
    return " ".join(text.split())


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run_in_order(page, tmp_path):
    text, found = blocks(page)
    runnable = [code for fragment, code in found if not fragment]
    for fragment, code in found:
        if fragment:
            compile(code, page, "exec")
    assert runnable, f"{page} has no runnable python block"
    script = tmp_path / "page.py"
    script.write_text("\n\n".join(runnable))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TMPDIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-W", "error::UserWarning", str(script)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    page_text = _squash(text)
    for line in result.stdout.splitlines():
        shown = _squash(re.sub(re.escape(str(tmp_path)) + r"/tmp\w+", "/tmp/tmpa1b2c3", line))
        assert shown in page_text, f"{page} does not show what it prints: {shown}"
