"""A SQL script compiled to a plan (no database): kinds, file:line, INSERT splitting, refusals."""

from __future__ import annotations

import pytest

from dsql_migrate.plan import StepKind
from dsql_migrate.profiles import STATE_ROWS_PER_BATCH, get_profile
from dsql_migrate.script import ScriptRefused, compile_script

CURRENT = get_profile("current")


def compile_(text: str, *, lint: bool = True) -> list[tuple[str, int, int, tuple[str, ...]]]:
    plan = compile_script(text, CURRENT, name="s.sql", lint=lint).plan
    return [(s.kind.value, s.details["line"], s.details["statement"], s.sql) for s in plan.steps]


def refused(text: str) -> str:
    with pytest.raises(ScriptRefused) as info:
        compile_script(text, CURRENT, name="s.sql")
    assert "nothing was run" in info.value.message
    return info.value.message


def test_one_step_per_statement_with_its_kind_line_and_number() -> None:
    steps = compile_("CREATE TABLE t (id int PRIMARY KEY, v text);\n"
                     "CREATE INDEX ASYNC t_v ON t (v);\n"
                     "ALTER TABLE t ADD CONSTRAINT c CHECK (id > 0) NOT VALID;\n"
                     "ALTER TABLE ASYNC t VALIDATE CONSTRAINT c;\n"
                     "\n-- a comment\n"
                     "INSERT INTO t VALUES (1, 'a');\n"
                     "BEGIN;\nUPDATE t SET v = 'b';\nDELETE FROM t WHERE id = 2;\nCOMMIT;\n")
    assert [(k, line, n) for k, line, n, _ in steps] == [
        ("ddl", 1, 1), ("async_index", 2, 2), ("ddl", 3, 3), ("async_validate", 4, 4),
        ("dml", 7, 5), ("dml", 8, 6)]
    assert steps[-1][3] == ("UPDATE t SET v = 'b'", "DELETE FROM t WHERE id = 2")


def test_destructive_statements_are_marked() -> None:
    plan = compile_script("DROP TABLE t;\nDELETE FROM u;\nINSERT INTO u VALUES (1);\n",
                          CURRENT, name="s.sql").plan
    assert [s.destructive for s in plan.steps] == [True, True, False]


def test_a_large_multi_row_insert_is_cut_into_legal_batches_keeping_its_clauses() -> None:
    rows = ",".join(f"({i}, 'é{i}')" for i in range(7000))
    steps = compile_(f"INSERT INTO t (id, v) VALUES {rows} ON CONFLICT (id) DO NOTHING;")
    limit = CURRENT.limits.rows_per_transaction - STATE_ROWS_PER_BATCH
    assert [s[0] for s in steps] == ["dml"] * 3
    counts = [s[3][0].count("'é") for s in steps]
    assert counts == [limit, limit, 7000 - 2 * limit]
    for _, line, number, sql in steps:
        assert (line, number) == (1, 1)
        assert sql[0].startswith("INSERT INTO t (id, v) VALUES (")
        assert sql[0].endswith(" ON CONFLICT (id) DO NOTHING")
    assert "(0, 'é0')" in steps[0][3][0] and "(6999, 'é6999')" in steps[2][3][0]


def test_an_insert_over_the_byte_budget_is_cut_too() -> None:
    big = "x" * (1024 * 1024)
    rows = ",".join(f"({i}, '{big}')" for i in range(8))
    steps = compile_(f"INSERT INTO t VALUES {rows};")
    assert len(steps) == 2  # 4 rows of 1 MiB fit in half of the 10 MiB limit, 5 do not
    assert all(len(s[3][0].encode()) <= CURRENT.limits.bytes_per_transaction // 2
               for s in steps)


def test_a_small_insert_or_insert_select_stays_whole() -> None:
    assert len(compile_("INSERT INTO t VALUES (1), (2);")) == 1
    assert len(compile_("INSERT INTO t SELECT * FROM u;")) == 1


def test_refusals_name_file_line_and_why() -> None:
    message = refused("CREATE TABLE t (id int PRIMARY KEY);\nCREATE INDEX i ON t (id);\n")
    assert "s.sql:2:1: index_async" in message
    assert "dsql-migrate load" in refused("COPY t (a) FROM stdin WITH (FORMAT csv);\n1\n\\.\n")
    assert "s.sql:3: a COPY data row has 1 fields" in refused(
        "COPY t (a, b) FROM stdin;\n1\t2\n3\n\\.\n")
    assert "no end line" in refused("COPY t (a) FROM stdin;\n1\n")
    assert "without a name" in refused("CREATE INDEX ASYNC ON t (a);")
    assert "s.sql:1: SET search_path" in refused("SET search_path = app;")
    assert "cannot be split" in refused(
        "BEGIN;\nINSERT INTO t VALUES " + ",".join(f"({i})" for i in range(4000)) + ";\nCOMMIT;")
    assert "never committed" in refused("BEGIN;\nINSERT INTO t VALUES (1);\n")
    assert "parse_error" in refused("\\c other\nSELECT 1;")


def test_harmless_session_settings_are_skipped_with_a_note() -> None:
    compiled = compile_script("SET client_encoding = 'UTF8';\nSELECT 1;", CURRENT, name="s.sql")
    assert [s.kind for s in compiled.plan.steps] == [StepKind.DML]
    assert any("s.sql:1: skipped SET client_encoding" in n for n in compiled.notes)


def test_a_rolled_back_block_runs_nothing() -> None:
    compiled = compile_script("BEGIN;\nINSERT INTO t VALUES (1);\nROLLBACK;\nSELECT 1;",
                              CURRENT, name="s.sql")
    assert [s.sql for s in compiled.plan.steps] == [("SELECT 1",)]
    assert any("rolled back" in n for n in compiled.notes)


def test_no_lint_still_refuses_what_cannot_be_classified() -> None:
    assert [k for k, *_ in compile_("CREATE INDEX i ON t (a);", lint=False)] == ["ddl"]
    with pytest.raises(ScriptRefused, match="psql meta-command"):
        compile_script("\\c db\n", CURRENT, name="s.sql", lint=False)


def test_a_copy_block_becomes_insert_batches_of_literals() -> None:
    data = "".join(f"{i}\t" + ("\\N" if i % 2 else f"a\\tb\\\\{i}\\303\\251") + "\n"
                   for i in range(4000))
    steps = compile_(f"COPY public.t (id, v) FROM stdin;\n{data}\\.\nSELECT 1;\n")
    assert [k for k, *_ in steps] == ["dml", "dml", "dml"]
    first = steps[0][3][0]
    assert first.startswith("INSERT INTO public.t (id, v) VALUES ('0', 'a\tb\\0é'),\n('1', NULL)")
    assert steps[0][1:3] == (1, 1) and steps[2][1:3] == (4003, 2)
