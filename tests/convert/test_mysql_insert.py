"""The fast INSERT reader reads what sqlglot reads, and hands anything else to sqlglot."""

from __future__ import annotations

from decimal import Decimal

import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from dsql_migrate.convert.mysql_insert import from_tree, read_insert
from dsql_migrate.convert.mysql_values import Token

# pieces MySQL strings are made of: plain text, every backslash escape, doubled quotes
PIECES = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\\'\""),
                max_size=5),
        st.sampled_from(["\\'", '\\"', "\\\\", "\\n", "\\0", "\\Z", "\\%", "\\_", "\\x", "\\ ",
                         "\\b", "\\t", "\\r", "''", '"', "\\\n"]),
    ),
    max_size=8,
)
OTHERS = st.sampled_from(
    ["NULL", "0", "-1", "1.5e3", "-0.25", ".5", "0x00FF", "X'41'", "b'101'", "TRUE", "DEFAULT",
     "_binary 'ab\\0'", "N'nn'", '"dq""x\\""']
)


def _normal(token: Token) -> Token:
    kind, payload = token
    if kind == "num":
        return (kind, str(Decimal(payload)))  # '.5' and '0.5' are one number
    if kind == "hex":
        return (kind, payload.upper())
    return token


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(PIECES.map(lambda p: "'" + "".join(p) + "'"), OTHERS),
                              min_size=1, max_size=4), min_size=1, max_size=3))
def test_the_fast_reader_agrees_with_sqlglot(rows: list[list[str]]) -> None:
    width = len(rows[0])
    rows = [(row * width)[:width] for row in rows]
    text = "INSERT INTO `t` VALUES " + ",\n".join("(" + ", ".join(r) + ")" for r in rows)
    fast = read_insert(text)
    assert fast is not None
    slow = from_tree("t", sqlglot.parse_one(text, read="mysql"))
    assert [[_normal(v) for v in row] for row in fast.rows] == [
        [_normal(v) for v in row] for row in slow.rows
    ]


def test_what_it_does_not_read_goes_to_sqlglot() -> None:
    for text in (
        "INSERT INTO t VALUES (NOW())",
        "INSERT INTO db.t VALUES (1)",
        "INSERT INTO t VALUES ('a' 'b')",
        "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1",
        "INSERT INTO t SELECT * FROM u",
        "INSERT INTO t VALUES (1 + 2)",
    ):
        assert read_insert(text) is None, text


def test_column_lists_ignore_and_lines() -> None:
    insert = read_insert("INSERT IGNORE INTO `my``t` (`a`, b)\nVALUES\n(1, 'x'),\n(2, 'y')")
    assert insert is not None and insert.ignore
    assert insert.table == "my`t" and insert.columns == ["a", "b"]
    assert insert.rows == [[("num", "1"), ("str", "x")], [("num", "2"), ("str", "y")]]
    assert insert.lines == [3, 4]
