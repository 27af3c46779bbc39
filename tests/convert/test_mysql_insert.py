"""The fast INSERT reader reads what sqlglot reads, and hands anything else to sqlglot."""

from __future__ import annotations

from decimal import Decimal

import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from dsql_migrate.convert.mysql_insert import read_insert

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


def _literal(node: exp.Expression) -> tuple[str, str]:
    if isinstance(node, (exp.Introducer, exp.National)):
        node = node.expression if isinstance(node, exp.Introducer) else exp.Literal.string(
            node.this)
    if isinstance(node, exp.Neg):
        return ("neg", str(Decimal(str(node.this.this))))
    if isinstance(node, exp.Literal) and not node.is_string:
        return ("num", str(Decimal(str(node.this))))
    return (type(node).__name__ if not isinstance(node, exp.Literal) else
            "str" if node.is_string else "num", str(node.this))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(PIECES.map(lambda p: "'" + "".join(p) + "'"), OTHERS),
                              min_size=1, max_size=4), min_size=1, max_size=3))
def test_the_fast_reader_agrees_with_sqlglot(rows: list[list[str]]) -> None:
    width = len(rows[0])
    rows = [(row * width)[:width] for row in rows]
    text = "INSERT INTO `t` VALUES " + ",\n".join("(" + ", ".join(r) + ")" for r in rows)
    fast = read_insert(text)
    assert fast is not None
    slow = sqlglot.parse_one(text, read="mysql")
    read = [[_literal(v) for v in row.expressions] for row in fast.expression.expressions]
    expected = [[_literal(v) for v in row.expressions] for row in slow.expression.expressions]
    assert read == expected


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
    tree = read_insert("INSERT IGNORE INTO `my``t` (`a`, b)\nVALUES\n(1, 'x'),\n(2, 'y')")
    assert tree is not None and tree.args["ignore"]
    assert tree.this.this.name == "my`t"
    assert [c.name for c in tree.this.expressions] == ["a", "b"]
    assert [row.expressions[1].meta["line"] for row in tree.expression.expressions] == [3, 4]
