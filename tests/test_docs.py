"""The README is the front door (short, no lab notebook); every docs path the code cites exists."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_readme_is_short_and_its_links_exist():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    prose = re.sub(r"\]\([^)]*\)", "]", text)  # (link targets may name a dated heading)
    assert not re.search(r"\bsessions? \d|work session|GPU loan|20\d\d-\d\d-\d\d", prose)  # no lab notebook
    for target in re.findall(r"\]\(((?:docs/)?[\w./-]+)(?:#[\w-]*)?\)", text):
        assert (ROOT / target).exists(), target


def test_docs_cited_by_the_code_exist():
    cited = set()
    for path in [*ROOT.glob("seqgan_music/**/*.py"), ROOT / "app.py", *ROOT.glob("scripts/*.py")]:
        cited |= set(re.findall(r"docs/[\w/.-]+\.md", path.read_text()))
    assert cited, "the code cites its write-ups"
    missing = sorted(c for c in cited if not (ROOT / c).exists())
    assert not missing, missing
