"""The splitter's token regexes search behind a lookahead of their first characters (a speed-up,
issue 18): the statements found must be exactly those of the plain regexes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsql_migrate.sql import splitter

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted([*ROOT.glob("tests/convert/samples/*.sql"),
                  *ROOT.glob("tests/lint/cases/**/*.sql")])
TRICKY = [
    "SELECT e'a\\'b;' ; SELECT somee'x;' ; SELECT E'';",
    "SELECT $$;$$; SELECT $tag$ ; $tag$; SELECT a$1$;b",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
    "SELECT CASE WHEN true THEN 1 END; END; SELECT 3",
    "SELECT 1 -- ;\n; /* ; /* ; */ ; */ SELECT \"a;\"\"b\"; SELECT 'it''s;'",
    "COPY t (a) FROM STDIN;\n1;2\n\\.\nSELECT 1;",
]


def _plain(pattern: re.Pattern[str]) -> re.Pattern[str]:
    head = pattern.pattern.index("(?:")
    assert pattern.pattern.startswith("(?=[") and pattern.pattern.endswith(")")
    return re.compile(pattern.pattern[head + 3:-1], pattern.flags)


@pytest.mark.parametrize("script", [*TRICKY, *SCRIPTS],
                         ids=lambda s: s.name if isinstance(s, Path) else s[:30])
def test_lookahead_tokens_split_as_the_plain_ones(script: str | Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    text = script.read_text(encoding="utf-8") if isinstance(script, Path) else script
    fast = splitter.split_script(text)
    atomic = _plain(splitter._token_atomic())
    monkeypatch.setattr(splitter, "_token_atomic", lambda: atomic)
    monkeypatch.setattr(splitter, "_TOKEN_FAST", _plain(splitter._TOKEN_FAST))
    assert splitter.split_script(text) == fast
    assert fast  # something was split
