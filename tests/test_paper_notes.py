"""PAPER_NOTES.md and the code agree: every DEVIATION(Dn) tag in the code has an entry, and vice versa."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_deviation_tags_match_paper_notes():
    code = "\n".join(p.read_text() for p in (REPO / "lenet5").glob("*.py"))
    tags = set(re.findall(r"DEVIATION\((D\d+)\)", code))
    notes = set(re.findall(r"^- \*\*(D\d+) ", (REPO / "PAPER_NOTES.md").read_text(), flags=re.M))
    assert tags, "no DEVIATION tags found"
    assert tags == notes, f"in code only: {sorted(tags - notes)}; in PAPER_NOTES.md only: {sorted(notes - tags)}"
