"""The documentation: the MkDocs site builds in strict mode (a broken link, anchor, page or
included file fails it) and the README's links resolve on GitHub as they do here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
# [text](target) and ![alt](target); the target ends at the first space or ")"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_the_docs_site_builds_strictly_with_every_page_and_included_file(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about MkDocs 2.0
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for page in (ROOT / "docs").glob("*.md"):
        built = site / "index.html" if page.stem == "index" else site / page.stem / "index.html"
        assert built.is_file(), f"{page.name} was not built"
    # pymdownx.snippets included the files themselves, not a copy of them
    benchmarks = (site / "benchmarks" / "index.html").read_text()
    first_section = re.search(r"^## (.+)$", (ROOT / "BENCHMARKS.md").read_text(), re.M)[1]
    assert f">{first_section}<" in benchmarks  # the heading, as <h2 ...>convert<a ...
    card = (ROOT / "src/lowlight/pretrained/bayer/README.md").read_text().splitlines()[0]
    assert card.lstrip("# ") in (site / "models" / "index.html").read_text()


def test_every_relative_link_in_the_readme_points_to_a_file():
    text = re.sub(r"<!--.*?-->", "", (ROOT / "README.md").read_text(), flags=re.S)
    targets = [t.split("#", 1)[0] for t in LINK.findall(text)]
    relative = [t for t in targets if t and not re.match(r"[a-z]+:", t)]
    assert "docs/comparison.jpg" in relative and "docs/getting-started.md" in relative
    missing = [t for t in relative if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"
