"""Plan builders and data helpers shared by the runner tests (imported via sys.path, see
conftest.py)."""

from __future__ import annotations

from typing import Any

import psycopg

from dsql_migrate.plan import Batch, Estimate, Plan, Step, StepKind


def create_source(conn: psycopg.Connection[Any], table: str, rows: int) -> None:
    """``table`` (id bigint PK, v integer, note text) with ``rows`` rows, via the raw URL."""
    conn.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, v integer, note text)')
    conn.execute(f"""INSERT INTO "{table}" SELECT g, (g * 7) % 100003, 'n' || g
                     FROM generate_series(1, {rows}) AS g""")


def checksum(conn: psycopg.Connection[Any], table: str) -> tuple[int, str]:
    row = conn.execute(f"""SELECT count(*), md5(coalesce(string_agg(
        id::text || ':' || v::text || ':' || coalesce(note, '~'), ',' ORDER BY id), ''))
        FROM "{table}" """).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def _checksum_sql(table: str) -> str:
    return (f"SELECT count(*) AS n, md5(coalesce(string_agg(id::text || ':' || v::text || ':' "
            f"|| coalesce(note, '~'), ',' ORDER BY id), '')) AS sum FROM \"{table}\"")


def recreate_plan(table: str, *, rows: int, batch_size: int = 1000,
                  unique_index: bool = False, drop_backup: bool = True) -> Plan:
    """Change ``v`` from integer to bigint by recreating ``table``."""
    new, old = f"{table}__new", f"{table}__old"
    src, dst = f'"{table}"', f'"{new}"'
    bounds = (f"SELECT id FROM (SELECT id FROM {src} WHERE (%(after_id)s::bigint IS NULL OR "
              f"id > %(after_id)s::bigint) AND (%(end_id)s::bigint IS NULL OR "
              f"id <= %(end_id)s::bigint) ORDER BY id LIMIT %(size)s) AS page "
              f"ORDER BY id DESC LIMIT 1")
    steps = [
        Step(1, StepKind.VERIFY, f"pre-check: every v of {table} fits bigint",
             (f"SELECT id FROM {src} WHERE v IS NOT NULL AND v::numeric <> v::bigint LIMIT 10",),
             table=table),
        Step(2, StepKind.DDL, f"create {new}",
             (f"CREATE TABLE {dst} (id bigint PRIMARY KEY, v bigint, note text)",), table=table),
        Step(3, StepKind.COPY, f"copy {table} into {new}",
             (f"INSERT INTO {dst} (id, v, note) SELECT id, v::bigint, note FROM {src} WHERE "
              f"(%(after_id)s::bigint IS NULL OR id > %(after_id)s::bigint) AND "
              f"id <= %(upto_id)s::bigint",),
             table=table,
             batch=Batch(table=src, key=("id",), key_types=("bigint",), size=batch_size,
                         bounds=bounds),
             estimate=Estimate(rows=rows, batches=-(-rows // batch_size),
                               transactions=-(-rows // batch_size))),
        Step(4, StepKind.VERIFY, f"verify {new} against {table}",
             (f"SELECT s.n AS source_rows, t.n AS target_rows, s.sum AS source_sum, "
              f"t.sum AS target_sum, s.n = t.n AND s.sum = t.sum AS ok FROM "
              f"({_checksum_sql(table)}) AS s, ({_checksum_sql(new)}) AS t",),
             table=table),
        Step(5, StepKind.SWAP, f"swap {new} into place",
             (f'ALTER TABLE {src} RENAME TO "{old}"', f'ALTER TABLE {dst} RENAME TO "{table}"'),
             table=table, details={"verified_by": 4}),
    ]
    if unique_index:
        steps.append(Step(len(steps) + 1, StepKind.ASYNC_INDEX, f"unique index on {table}.note",
                          (f'CREATE UNIQUE INDEX ASYNC "{table}_note_key" ON {src} (note)',),
                          table=table, estimate=Estimate(async_jobs=1)))
    if drop_backup:
        steps.append(Step(len(steps) + 1, StepKind.DDL, f"drop the backup {old}",
                          (f'DROP TABLE "{old}"',), table=table, destructive=True,
                          reversible=False))
    return Plan(profile="current", steps=tuple(steps))


def with_check_in_copy(plan: Plan, function: str, argument: str) -> Plan:
    """``plan`` (from :func:`recreate_plan`) with ``SELECT function(argument)`` over each copy
    batch's key range run first in the batch's transaction: a test's way to make a batch fail
    (a limit error, a stop) at a chosen point."""
    copy = plan.steps[2]
    table = copy.table
    check = (f'SELECT "{function}"({argument}) FROM "{table}" WHERE '
             "(%(after_id)s::bigint IS NULL OR id > %(after_id)s::bigint) AND "
             "id <= %(upto_id)s::bigint")
    checked = Step(copy.id, copy.kind, copy.summary, (check, *copy.sql), table=copy.table,
                   batch=copy.batch, estimate=copy.estimate)
    return Plan(profile="current", steps=(*plan.steps[:2], checked, *plan.steps[3:]))


def assert_batches_exactly_once(conn: psycopg.Connection[Any], schema: str, plan_hash: str,
                                step: int, total_rows: int) -> int:
    """The audit trail of a batched step shows every key range exactly once: the lanes tile the
    key space (lane 0 from the start, each next lane from the previous one's end, the last to
    the end), each lane's batches are numbered 1..n, each starting where the previous ended and
    the first at the lane's start, and the rows add up. Returns the number of lanes."""
    lanes = conn.execute(
        f'SELECT lane, start_key, end_key, cursor, batches_done, done FROM "{schema}".lanes '
        "WHERE plan_hash = %s AND step = %s ORDER BY lane", (plan_hash, step)).fetchall()
    assert lanes and [lane[0] for lane in lanes] == list(range(len(lanes)))
    assert lanes[0][1] is None and lanes[-1][2] is None
    assert all(lanes[i][1] == lanes[i - 1][2] for i in range(1, len(lanes)))
    assert all(lane[5] for lane in lanes), lanes
    rows = 0
    for lane, start, end, _cursor, batches_done, _done in lanes:
        batches = conn.execute(
            f'SELECT batch, after_key, upto_key, rows FROM "{schema}".batches '
            "WHERE plan_hash = %s AND step = %s AND lane = %s ORDER BY batch",
            (plan_hash, step, lane)).fetchall()
        assert [b[0] for b in batches] == list(range(1, len(batches) + 1)), (lane, batches)
        assert len(batches) == batches_done
        if batches:
            assert batches[0][1] == start
            assert all(batches[i][1] == batches[i - 1][2] for i in range(1, len(batches)))
            if end is not None:
                assert int(batches[-1][2].strip("[]")) <= int(end.strip("[]"))
        rows += sum(b[3] for b in batches)
    assert rows == total_rows
    return len(lanes)
