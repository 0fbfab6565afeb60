"""The flag tables of server/, worker/ and client/README.md list exactly the flags the
commands have (regenerate with `uv run python -m tests.docs.flags --write`)."""

from __future__ import annotations

from tests.docs.flags import BLOCK, DOCS, ROOT, refreshed


def test_flag_tables_are_fresh() -> None:
    found = 0
    for doc in DOCS:
        path = ROOT / doc
        if not path.exists():
            continue
        text = path.read_text()
        found += len(BLOCK.findall(text))
        assert refreshed(text) == text, f"{doc}: run `uv run python -m tests.docs.flags --write`"
    assert found >= 3
