"""What CDC needs inside the embedded database, set up and taken down by the superuser.

- a publication ``FOR ALL TABLES`` (inserts, updates, deletes; DSQL streams no DDL and has no
  TRUNCATE to stream) and a logical replication slot with ``pgoutput`` (PostgreSQL ships it;
  ``wal_level = logical`` is always set, see :data:`..postgres.SERVER_SETTINGS`);
- ``REPLICA IDENTITY FULL`` on every table, those made later included (an event trigger on
  ``CREATE TABLE``): PostgreSQL refuses UPDATE and DELETE on a published table without a
  replica identity (a table without a primary key, which DSQL allows), and with FULL an update
  carries every old value, so a record's ``after`` is the whole row even when a large unchanged
  value was not logged again. Nothing of the emulator reads ``relreplident``, and DSQL refuses
  ``ALTER TABLE ... REPLICA IDENTITY``, so users cannot see or set it through the emulator.

Taken down when the emulator stops (or, after a kill, at its next start without ``--cdc``), so
that the slot does not keep WAL and no publication stays behind; the tables keep FULL, which
only makes their updates log a little more.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

SLOT: Final = "dsql_migrate_cdc"
PUBLICATION: Final = "dsql_migrate_cdc"
EVENT_TRIGGER: Final = "dsql_emulator_cdc"

#: schemas whose tables are not streamed: the server's and the emulator's own (``sys``); every
#: other table is a user table on DSQL (dsql-migrate's own state tables included) and streamed
INTERNAL_SCHEMAS: Final = frozenset({"sys", "information_schema"})

_TABLES_TO_ALTER = r"""
    SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND c.relreplident <> 'f'
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
"""

_EVENT_TRIGGER_SQL = f"""
CREATE OR REPLACE FUNCTION sys._cdc_replica_identity() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    obj record;
BEGIN
    FOR obj IN SELECT d.objid FROM pg_event_trigger_ddl_commands() d
               JOIN pg_class c ON c.oid = d.objid
               WHERE d.object_type = 'table' AND c.relkind IN ('r', 'p')
                 AND c.relpersistence = 'p' AND c.relreplident <> 'f' LOOP
        -- the emulator's own statement: not one more DDL statement of the user's transaction
        PERFORM set_config('dsql.internal', 'on', true);
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', obj.objid::regclass);
        PERFORM set_config('dsql.internal', '', true);
    END LOOP;
END $$;
DROP EVENT TRIGGER IF EXISTS {EVENT_TRIGGER};
CREATE EVENT TRIGGER {EVENT_TRIGGER} ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    EXECUTE FUNCTION sys._cdc_replica_identity();
"""

_PRIMARY_KEY_SQL = """
    SELECT a.attname FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = %s AND i.indisprimary
    ORDER BY k.ord
"""


def setup(conn: psycopg.Connection[Any]) -> None:
    """Make the publication, the replica identities, the event trigger and a fresh slot (the
    stream is new at every start, so older changes have nowhere to go)."""
    with conn.transaction():
        conn.execute(_EVENT_TRIGGER_SQL)
        for (table,) in conn.execute(_TABLES_TO_ALTER).fetchall():
            conn.execute(f"ALTER TABLE {table} REPLICA IDENTITY FULL")
        if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s",
                        (PUBLICATION,)).fetchone() is None:
            conn.execute(f"CREATE PUBLICATION {PUBLICATION} FOR ALL TABLES "
                         "WITH (publish = 'insert, update, delete')")
    _drop_slot(conn)
    conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (SLOT,))


def _drop_slot(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                 "WHERE slot_name = %s AND NOT active", (SLOT,))


def teardown(conn: psycopg.Connection[Any]) -> None:
    """Remove the slot, the publication and the event trigger (whatever of them is there)."""
    _drop_slot(conn)
    with conn.transaction():
        conn.execute(f"DROP PUBLICATION IF EXISTS {PUBLICATION}")
        conn.execute(f"DROP EVENT TRIGGER IF EXISTS {EVENT_TRIGGER}")
        conn.execute("DROP FUNCTION IF EXISTS sys._cdc_replica_identity()")


def primary_key(conn: psycopg.Connection[Any], table_oid: int) -> list[str] | None:
    names = [row[0] for row in conn.execute(_PRIMARY_KEY_SQL, (table_oid,)).fetchall()]
    return names or None


def peek(conn: psycopg.Connection[Any], limit: int) -> list[tuple[str, bytes]]:
    """Committed changes past the slot's position (whole transactions), as pgoutput messages."""
    rows = conn.execute(
        "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes("
        "%s, NULL, %s, 'proto_version', '1', 'publication_names', %s)",
        (SLOT, limit, PUBLICATION)).fetchall()
    return [(str(lsn), bytes(data)) for lsn, data in rows]


def advance(conn: psycopg.Connection[Any], lsn: str) -> None:
    """Forget what was delivered, up to the end of the last transaction delivered."""
    conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (SLOT, lsn))


def wal_level(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SHOW wal_level").fetchone()
    return str(row[0]) if row else ""
