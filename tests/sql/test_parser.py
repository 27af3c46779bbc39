from __future__ import annotations

import pytest

from dsql_migrate.sql import (
    StatementKind,
    parse_script,
    quote_ident,
    quote_literal,
    quote_qualified,
)


def test_create_index_async_is_not_an_index_named_async() -> None:
    (p,) = parse_script("CREATE INDEX ASYNC ON t (a)")
    assert p.node_type == "IndexStmt" and p.is_async
    assert p.node is not None and p.node.get("idxname") is None
    assert p.text == "CREATE INDEX ASYNC ON t (a)"  # the original text is kept


@pytest.mark.parametrize(
    ("sql", "name", "unique", "if_not_exists"),
    [
        ("create unique index async if not exists ux on t (a)", "ux", True, True),
        ("CREATE INDEX ASYNC ix ON t (a) INCLUDE (b) NULLS NOT DISTINCT", "ix", False, False),
        ("CREATE INDEX async_ix ON t (a)", "async_ix", False, False),
    ],
)
def test_index_async_variants(sql: str, name: str, unique: bool, if_not_exists: bool) -> None:
    (p,) = parse_script(sql)
    assert p.node is not None
    assert p.node.get("idxname") == name
    assert bool(p.node.get("unique")) is unique
    assert bool(p.node.get("if_not_exists")) is if_not_exists
    assert p.is_async is (name != "async_ix")


def test_alter_table_async_validate() -> None:
    (p,) = parse_script("ALTER TABLE ASYNC orders VALIDATE CONSTRAINT c1")
    assert p.is_async and p.node_type == "AlterTableStmt"
    assert p.node is not None
    assert p.node["relation"]["relname"] == "orders"
    assert p.node["cmds"][0]["AlterTableCmd"]["subtype"] == "AT_ValidateConstraint"


def test_classification() -> None:
    script = """
        BEGIN; CREATE TABLE t (a int); INSERT INTO t VALUES (1); SELECT 1; COMMIT;
        GRANT SELECT ON t TO r; COMMENT ON TABLE t IS 'x'; SET search_path = x;
        TRUNCATE t; CALL sys.wait_for_job('j'); AWS IAM GRANT app TO 'arn:aws:iam::1:role/x';
        SAVEPOINT s; DROP INDEX i; selec nonsense
    """
    kinds = [p.kind for p in parse_script(script)]
    d, m, t, o = (StatementKind.DDL, StatementKind.DML, StatementKind.TRANSACTION,
                  StatementKind.OTHER)
    assert kinds == [t, d, m, m, t, d, d, o, m, o, d, t, d, StatementKind.UNKNOWN]


def test_parse_error_has_position_and_others_still_parse() -> None:
    script = "SELECT 1;\nSELECT * FROM WHERE x;\nCREATE TABLE t (a int)"
    a, b, c = parse_script(script)
    assert a.error is None and c.node_type == "CreateStmt"
    assert b.error is not None and b.node is None
    assert b.statement.position_of(b.error.offset) == (2, 15)


def test_positions_of_nodes_in_whole_script_parse() -> None:
    script = "SELECT 'é';\nCREATE TABLE t (\n  id serial,\n  b text)"
    _, p = parse_script(script)
    assert p.node is not None
    col = p.node["tableElts"][1]["ColumnDef"]
    assert p.position(col["location"]) == (4, 3)
    assert p.position(p.node["tableElts"][0]["ColumnDef"]["typeName"]["location"]) == (3, 6)


def test_non_ascii_positions_in_fallback_parse() -> None:
    script = "SELECT 'ü';\nCREATE TABLE t (a int, é serial);\nselec x"
    _, p, bad = parse_script(script)
    assert bad.error is not None and p.node is not None
    col = p.node["tableElts"][1]["ColumnDef"]
    assert p.position(col["location"]) == (2, 24)


def test_quoting() -> None:
    assert quote_ident("orders") == "orders"
    assert quote_ident("Orders") == '"Orders"'
    assert quote_ident("user") == '"user"'
    assert quote_ident("1st") == '"1st"'
    assert quote_qualified("public", "a b") == 'public."a b"'
    assert quote_qualified(None, "t") == "t"
    assert quote_literal("o'k") == "'o''k'"
