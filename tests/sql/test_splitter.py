from __future__ import annotations

import pytest

from dsql_migrate.sql import split_script


def texts(script: str) -> list[str]:
    return [s.text for s in split_script(script)]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("SELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),
        ("SELECT 1;;  ;\n-- only a comment\n", ["SELECT 1"]),
        ("SELECT ';' ; SELECT 'it''s;'", ["SELECT ';'", "SELECT 'it''s;'"]),
        ("SELECT E'a\\';b'; SELECT 2", ["SELECT E'a\\';b'", "SELECT 2"]),
        ('SELECT "a;b" FROM t; SELECT 2', ['SELECT "a;b" FROM t', "SELECT 2"]),
        ("SELECT $$;$$; SELECT $x$ $$ ; $x$", ["SELECT $$;$$", "SELECT $x$ $$ ; $x$"]),
        ("SELECT 1 -- ; not a split\n; SELECT 2", ["SELECT 1 -- ; not a split", "SELECT 2"]),
        ("SELECT /* ; /* nested ; */ still ; */ 1; SELECT 2",
         ["SELECT /* ; /* nested ; */ still ; */ 1", "SELECT 2"]),
        ("PREPARE p AS SELECT $1; SELECT a$b$c FROM t", ["PREPARE p AS SELECT $1",
                                                          "SELECT a$b$c FROM t"]),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
            "SELECT CASE WHEN true THEN 1 END; END; SELECT 3",
            [
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
                "SELECT CASE WHEN true THEN 1 END; END",
                "SELECT 3",
            ],
        ),
        ("BEGIN; CREATE TABLE t (a int); COMMIT;", ["BEGIN", "CREATE TABLE t (a int)", "COMMIT"]),
        ("SELECT 'unterminated; SELECT 2", ["SELECT 'unterminated; SELECT 2"]),
        ("SELECT $$ open; forever", ["SELECT $$ open; forever"]),
    ],
)
def test_split_texts(script: str, expected: list[str]) -> None:
    assert texts(script) == expected


def test_positions_are_exact() -> None:
    script = "-- header\n\n  SELECT 1;  /* c */ SELECT\n 2;\nSELECT 'é';   SELECT 4"
    stmts = split_script(script)
    assert [(s.line, s.column) for s in stmts] == [(3, 3), (3, 22), (5, 1), (5, 15)]
    for s in stmts:
        assert script[s.start : s.end] == s.text
        lines = script.split("\n")
        assert lines[s.line - 1][s.column - 1 :].startswith(s.text.split("\n")[0])
    assert stmts[0].leading == "-- header\n\n  "
    assert stmts[-1].terminated is False and stmts[0].terminated is True


def test_position_of_inner_offset() -> None:
    (stmt,) = split_script("\n  SELECT a,\n    b FROM t")
    assert stmt.position_of(0) == (2, 3)
    assert stmt.position_of(stmt.text.index("b")) == (3, 5)
    assert stmt.position_of(stmt.text.index("a")) == (2, 10)


def test_copy_from_stdin_data_is_skipped() -> None:
    script = "COPY t (a, b) FROM stdin;\n1\tx;y\n2\t'q\n\\.\nSELECT 1;\n"
    copy, select = split_script(script)
    assert copy.text == "COPY t (a, b) FROM stdin"
    assert (select.text, select.line, select.column) == ("SELECT 1", 5, 1)
    assert select.leading == "\n1\tx;y\n2\t'q\n\\.\n"
