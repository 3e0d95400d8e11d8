"""docs/api.md is generated from the docstrings (tools/api_reference.py): every public
name has a docstring, and the page says what the code says."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import api_reference  # noqa: E402


def test_every_public_name_has_a_docstring():
    assert api_reference.missing_docstrings() == []


def test_every_public_name_is_on_the_page_in_a_section():
    import optax_selfsup as oss

    text = api_reference.render()
    for name in oss.__all__:
        assert f"### `{name}`" in text, name
    assert "## Other" not in text, "a public name's module has no section in SECTIONS"
    assert " object at 0x" not in text  # a default rendered by id: the page would churn


def test_docs_api_md_is_up_to_date():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "api_reference.py"),
                             "--check"], capture_output=True, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
