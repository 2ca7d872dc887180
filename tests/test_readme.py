"""The README's input-format tables are generated from the schemas and must stay in sync.

Run this file as a script to rewrite them: ``.venv/bin/python tests/test_readme.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from recoverscore.data.schemas import (
    History,
    Outcomes,
    Portfolio,
    Scored,
    SyntheticHistory,
    schema_reference,
)

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = {
    "portfolio": schema_reference(Portfolio),
    "history": schema_reference(History, since=Portfolio),
    "synthetic": schema_reference(SyntheticHistory, since=History),
    "outcomes": schema_reference(Outcomes),
    "scored": schema_reference(Scored),
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- BEGIN schema:{name} -->\n)(.*?)(<!-- END schema:{name} -->)", re.S)


def rendered(text: str) -> str:
    for name, block in BLOCKS.items():
        text = _pattern(name).sub(lambda m, b=block: f"{m[1]}{b}\n{m[3]}", text)
    return text


def test_readme_schema_tables_match_the_models():
    text = README.read_text(encoding="utf-8")
    for name in BLOCKS:
        assert _pattern(name).search(text), f"README lacks the schema:{name} markers"
    assert text == rendered(text), "README schema tables are stale: run tests/test_readme.py"


def test_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in README.read_text(encoding="utf-8")


if __name__ == "__main__":
    README.write_text(rendered(README.read_text(encoding="utf-8")), encoding="utf-8")
    sys.exit(0)
