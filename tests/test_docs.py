"""The README stays a landing page and the documentation site builds with --strict (a broken link,
a missing page or a docstring reference that does not resolve fails the build)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_a_landing_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme) <= 8000, len(readme)
    first = readme.split("```")[1]
    assert "make demo" in first and "make test" in first  # the two commands come first
    for link in ("docs/guides/converting.md", "docs/guides/validating.md", "CHANGELOG.md"):
        assert (ROOT / link).is_file(), link


def test_docs_site_builds_strict_with_generated_pages(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "effconvert convert" in cli and "executorch" in cli  # generated from the typer app
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "Convert" in api and "checkpoint" in api  # mkdocstrings rendered the API
    gates = (site / "guides" / "validating" / "index.html").read_text(encoding="utf-8")
    assert "decided" in gates and "{{" not in gates  # the gate table was generated
