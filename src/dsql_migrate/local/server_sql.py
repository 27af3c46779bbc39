"""The emulator's objects inside the embedded database, installed by the superuser ``postgres``.

Some DSQL rules are exact only inside the server, so they live there:

- an event trigger on ``ddl_command_start`` counts DDL statements per transaction and refuses a
  second one, or one after a write (DSQL.md §2);
- every user table gets three statement-level triggers with transition tables (installed by an
  event trigger on ``ddl_command_end`` for ``CREATE TABLE``) that count rows and approximate the
  bytes written per transaction, and refuse writes after DDL;
- schema ``sys``: ``sys.jobs``, ``sys.wait_for_job`` and the functions the proxy rewrites
  ``CREATE INDEX ASYNC`` / ``ALTER TABLE ASYNC`` and rejected statements into.

The rules apply only to sessions that set ``dsql.emulate = on``: the proxy sets it in the startup
packet of every connection it opens, so the direct (raw) URL stays plain PostgreSQL.

Per-transaction counters are custom settings set with ``set_config(..., true)``, which PostgreSQL
resets at the end of every transaction, rolled back or not.

Every ``SECURITY DEFINER`` function (they run with the superuser's rights) pins its
``search_path`` to ``pg_catalog, pg_temp``, so that no caller can slip in a function of its own;
what needs the caller's search path (resolving a table name) is done by a ``SECURITY INVOKER``
wrapper before it calls in.
"""

from __future__ import annotations

#: bump whenever the SQL below changes: ``install`` reinstalls when the recorded one differs
VERSION = 9

INSTALL_SQL = r"""
CREATE SCHEMA IF NOT EXISTS sys;
GRANT USAGE ON SCHEMA sys TO PUBLIC;

CREATE TABLE IF NOT EXISTS sys._emulator (version int NOT NULL);

CREATE TABLE IF NOT EXISTS sys._jobs (
    job_id      text PRIMARY KEY,
    status      text NOT NULL DEFAULT 'submitted',
    job_type    text NOT NULL,
    object_name text,
    details     text,
    start_time  timestamptz NOT NULL DEFAULT clock_timestamp(),
    end_time    timestamptz,
    statement   text NOT NULL,
    table_oid   oid,
    search_path text,
    worker_pid  int
);
-- who submitted the job: the job runner connects as that role to run it
ALTER TABLE sys._jobs ADD COLUMN IF NOT EXISTS submitter text;

CREATE OR REPLACE VIEW sys.jobs AS
    SELECT job_id, status, job_type, object_name, details, start_time, end_time
    FROM sys._jobs;
GRANT SELECT ON sys.jobs TO PUBLIC;

-- an error with the SQLSTATE and message DSQL gives: what rejected statements are rewritten to
CREATE OR REPLACE FUNCTION sys.dsql_error(code text, message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
END $$;

CREATE OR REPLACE FUNCTION sys._setting(name text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT coalesce(nullif(current_setting(name, true), ''), '') $$;

-- one DDL per transaction, never with writes; called for DDL statements and async jobs
CREATE OR REPLACE FUNCTION sys._count_ddl() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('dsql.emulate', true) IS DISTINCT FROM 'on' THEN
        RETURN;
    END IF;
    IF coalesce(current_setting('dsql.written', true), '') <> '' THEN
        RAISE EXCEPTION USING ERRCODE = '0A000',
            MESSAGE = 'ddl and dml are not supported in the same transaction';
    END IF;
    IF coalesce(nullif(current_setting('dsql.ddl', true), ''), '') = 'on' THEN
        RAISE EXCEPTION USING ERRCODE = '0A000',
            MESSAGE = 'multiple ddl statements are not supported in a transaction';
    END IF;
    PERFORM set_config('dsql.ddl', 'on', true);
END $$;

CREATE OR REPLACE FUNCTION sys._on_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('dsql.emulate', true) IS DISTINCT FROM 'on'
       OR current_setting('dsql.internal', true) = 'on' THEN
        RETURN;
    END IF;
    PERFORM sys._count_ddl();
    IF tg_tag = 'ALTER TABLE' THEN
        -- remember the primary keys, so that sys._on_sql_drop can tell one was dropped
        PERFORM set_config('dsql.pk_oids', coalesce((SELECT string_agg(oid::text, ',')
                                                     FROM pg_constraint WHERE contype = 'p'),
                                                    ''), true);
    END IF;
END $$;

-- DSQL never drops a primary key: not with DROP CONSTRAINT, not with DROP COLUMN
CREATE OR REPLACE FUNCTION sys._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('dsql.emulate', true) IS DISTINCT FROM 'on'
       OR tg_tag <> 'ALTER TABLE' THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects() d
               WHERE d.classid = 'pg_constraint'::regclass
                 AND d.objid::text = ANY (string_to_array(
                     coalesce(current_setting('dsql.pk_oids', true), ''), ','))) THEN
        IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects() d
                   WHERE d.object_type = 'table column' AND d.original) THEN
            RAISE EXCEPTION USING ERRCODE = '0A000',
                MESSAGE = 'DROP COLUMN of a primary key column is not supported';
        END IF;
        RAISE EXCEPTION USING ERRCODE = '0A000',
            MESSAGE = 'DROP CONSTRAINT of the primary key is not supported';
    END IF;
END $$;

-- rows and bytes per transaction, and no write after DDL. Kept lean, it runs for every write:
-- one query over the transition table, then simple expressions only, and a single setting,
-- dsql.written = '<rows>/<bytes>', which also tells the DDL check that the transaction wrote.
CREATE OR REPLACE FUNCTION sys._count_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    b bigint;
    written text;
    total_rows bigint;
    total_bytes bigint;
BEGIN
    IF current_setting('dsql.ddl', true) = 'on' THEN
        RAISE EXCEPTION USING ERRCODE = '0A000',
            MESSAGE = 'ddl and dml are not supported in the same transaction';
    END IF;
    IF TG_OP = 'DELETE' THEN
        SELECT count(*), coalesce(sum(pg_column_size(r.*)), 0) INTO n, b FROM old_rows r;
    ELSE
        SELECT count(*), coalesce(sum(pg_column_size(r.*)), 0) INTO n, b FROM new_rows r;
    END IF;
    written := current_setting('dsql.written', true);
    IF written IS NULL OR written = '' THEN
        total_rows := n;
        total_bytes := b;
    ELSE
        total_rows := split_part(written, '/', 1)::bigint + n;
        total_bytes := split_part(written, '/', 2)::bigint + b;
    END IF;
    IF total_rows > coalesce(nullif(current_setting('dsql.row_limit', true), ''), '3000')::bigint
    THEN
        RAISE EXCEPTION USING ERRCODE = '54000', MESSAGE = 'transaction row limit exceeded';
    END IF;
    IF total_bytes > coalesce(nullif(current_setting('dsql.byte_limit', true), ''),
                              '10485760')::bigint THEN
        RAISE EXCEPTION USING ERRCODE = '54000',
            MESSAGE = 'transaction size limit 10mb exceeded';
    END IF;
    PERFORM set_config('dsql.written', total_rows || '/' || total_bytes, true);
    RETURN NULL;
END $$;

-- attach the counting triggers to a table (skipped for the emulator's own schema)
CREATE OR REPLACE FUNCTION sys._attach_counters(rel regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    kind "char";
    nsp text;
BEGIN
    SELECT c.relkind, n.nspname INTO kind, nsp
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
    IF kind IS DISTINCT FROM 'r' OR nsp IN ('sys', 'pg_catalog', 'information_schema') THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pg_trigger WHERE tgrelid = rel AND tgname = 'dsql_emulator_ins') THEN
        RETURN;
    END IF;
    PERFORM set_config('dsql.internal', 'on', true);
    EXECUTE format('CREATE TRIGGER dsql_emulator_ins AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                   'WHEN (current_setting(''dsql.emulate'', true) = ''on'') '
                   'EXECUTE FUNCTION sys._count_rows()', rel);
    EXECUTE format('CREATE TRIGGER dsql_emulator_upd AFTER UPDATE ON %s '
                   'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                   'WHEN (current_setting(''dsql.emulate'', true) = ''on'') '
                   'EXECUTE FUNCTION sys._count_rows()', rel);
    EXECUTE format('CREATE TRIGGER dsql_emulator_del AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT '
                   'WHEN (current_setting(''dsql.emulate'', true) = ''on'') '
                   'EXECUTE FUNCTION sys._count_rows()', rel);
    PERFORM set_config('dsql.internal', '', true);
END $$;

CREATE OR REPLACE FUNCTION sys._on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    obj record;
    found bigint;
BEGIN
    FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands()
               WHERE command_tag = 'CREATE TABLE' AND object_type = 'table' LOOP
        PERFORM sys._attach_counters(obj.objid::regclass);
    END LOOP;
    IF current_setting('dsql.emulate', true) IS DISTINCT FROM 'on' THEN
        RETURN;
    END IF;
    IF tg_tag = 'CREATE SCHEMA' THEN
        SELECT count(*) INTO found FROM pg_namespace
        WHERE nspname NOT IN ('public', 'sys', 'information_schema')
          AND nspname NOT LIKE 'pg\_%';
        IF found > coalesce(nullif(current_setting('dsql.schema_limit', true), ''),
                            '10')::bigint THEN
            RAISE EXCEPTION USING ERRCODE = '54000', MESSAGE = format(
                'too many schemas (limit %s besides public)',
                current_setting('dsql.schema_limit', true));
        END IF;
    ELSIF tg_tag = 'CREATE TABLE' THEN
        SELECT count(*) INTO found FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p')
          AND n.nspname NOT IN ('sys', 'information_schema') AND n.nspname NOT LIKE 'pg\_%';
        IF found > coalesce(nullif(current_setting('dsql.table_limit', true), ''),
                            '1000')::bigint THEN
            RAISE EXCEPTION USING ERRCODE = '54000', MESSAGE = format(
                'too many tables in the database (limit %s)',
                current_setting('dsql.table_limit', true));
        END IF;
    END IF;
END $$;

DROP EVENT TRIGGER IF EXISTS dsql_emulator_ddl_start;
CREATE EVENT TRIGGER dsql_emulator_ddl_start ON ddl_command_start
    EXECUTE FUNCTION sys._on_ddl_start();
DROP EVENT TRIGGER IF EXISTS dsql_emulator_sql_drop;
CREATE EVENT TRIGGER dsql_emulator_sql_drop ON sql_drop
    WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION sys._on_sql_drop();
DROP EVENT TRIGGER IF EXISTS dsql_emulator_ddl_end;
CREATE EVENT TRIGGER dsql_emulator_ddl_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE SCHEMA') EXECUTE FUNCTION sys._on_ddl_end();

-- CREATE [UNIQUE] INDEX ASYNC: record a job; the daemon builds it after this transaction commits
-- (SECURITY INVOKER: the table name resolves on the caller's search path, which is recorded for
-- the job; the privileged part, sys._record_job, sees neither)
DROP FUNCTION IF EXISTS sys._submit_job(text, text, text, text, int, boolean);
CREATE FUNCTION sys._submit_job(
    job_type text, object_name text, statement text, table_name text,
    new_indexes int, if_not_exists boolean DEFAULT false
) RETURNS TABLE (job_id text)
LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    PERFORM sys._count_ddl();
    RETURN QUERY SELECT r.job_id FROM sys._record_job(
        _submit_job.job_type, _submit_job.object_name, _submit_job.statement,
        _submit_job.table_name, _submit_job.table_name::regclass, _submit_job.new_indexes,
        _submit_job.if_not_exists,
        pg_catalog.current_setting('search_path')) AS r;
END $$;

CREATE OR REPLACE FUNCTION sys._record_job(
    job_type text, object_name text, statement text, table_name text, rel regclass,
    new_indexes int, if_not_exists boolean, caller_search_path text
) RETURNS TABLE (job_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id text := replace(gen_random_uuid()::text, '-', '');
    existing int;
    index_limit int := coalesce(nullif(current_setting('dsql.index_limit', true), ''),
                                '24')::int;
    caller text := session_user;
BEGIN
    IF NOT has_table_privilege(caller, rel, 'SELECT') OR NOT pg_has_role(
        caller, (SELECT relowner FROM pg_class WHERE oid = rel), 'USAGE') THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('must be owner of table %s',
                                                                    table_name);
    END IF;
    IF job_type = 'INDEX_BUILD' THEN
        -- on DSQL the index is in the catalog from the submit on; here from the build's start:
        -- a build still waiting for the job runner holds its name too
        IF EXISTS (SELECT FROM pg_class c WHERE c.relname = object_name
                   AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = rel))
           OR EXISTS (SELECT FROM sys._jobs j JOIN pg_class t ON t.oid = j.table_oid
                      WHERE j.job_type = 'INDEX_BUILD' AND j.object_name = _record_job.object_name
                      AND j.status IN ('submitted', 'processing')
                      AND t.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = rel))
        THEN
            IF if_not_exists THEN
                INSERT INTO sys._jobs (job_id, status, job_type, object_name, statement,
                                       table_oid, end_time, details, submitter)
                VALUES (id, 'completed', job_type, object_name, statement, rel,
                        clock_timestamp(), 'already exists', caller);
                RETURN QUERY SELECT id;
                RETURN;
            END IF;
            RAISE EXCEPTION USING ERRCODE = '42P07',
                MESSAGE = format('relation "%s" already exists', object_name);
        END IF;
        SELECT count(*) INTO existing FROM pg_index WHERE indrelid = rel;
        existing := existing + (SELECT count(*) FROM sys._jobs j WHERE j.table_oid = rel
                                AND j.job_type = 'INDEX_BUILD'
                                AND j.status IN ('submitted', 'processing'));
        IF existing + new_indexes > index_limit THEN
            RAISE EXCEPTION USING ERRCODE = '54000',
                MESSAGE = format('too many indexes on table %s (limit %s)', table_name,
                                 index_limit);
        END IF;
    END IF;
    INSERT INTO sys._jobs (job_id, job_type, object_name, statement, table_oid, search_path,
                           submitter)
    VALUES (id, job_type, object_name, statement, rel, caller_search_path, caller);
    PERFORM pg_notify('dsql_emulator_jobs', id);
    RETURN QUERY SELECT id;
END $$;

DROP PROCEDURE IF EXISTS sys.wait_for_job(text, boolean);
CREATE PROCEDURE sys.wait_for_job(job_id text, INOUT wait_for_job boolean DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    st text;
BEGIN
    LOOP
        COMMIT;  -- fails inside a transaction block, as on DSQL; a fresh snapshot each round
        SELECT j.status INTO st FROM sys.jobs j WHERE j.job_id = wait_for_job.job_id;
        IF st IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = '42704',
                MESSAGE = format('job %s does not exist', wait_for_job.job_id);
        END IF;
        IF st IN ('completed', 'failed', 'cancelled') THEN
            wait_for_job := st = 'completed';
            RETURN;
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END $$;
GRANT EXECUTE ON PROCEDURE sys.wait_for_job(text, boolean) TO PUBLIC;

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('sys', 'pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%' LOOP
        PERFORM sys._attach_counters(t);
    END LOOP;
END $$;

-- AWS IAM GRANT / REVOKE (the proxy rewrites them into CALL sys._aws_iam): the mappings of
-- database roles to IAM identities, shown as DSQL shows them. A mapped role is granted SELECT
-- on sys._iam_mapped (an empty table) so that PostgreSQL refuses DROP ROLE while it is mapped
-- (2BP01, "cannot be dropped because some objects depend on it"), as DSQL does.
CREATE SEQUENCE IF NOT EXISTS sys._iam_oid START 26000;
CREATE TABLE IF NOT EXISTS sys._iam_mappings (
    iam_oid oid NOT NULL,
    arn text NOT NULL,
    pg_role_oid oid NOT NULL,
    grantor_pg_role_oid oid NOT NULL,
    PRIMARY KEY (arn, pg_role_oid)
);
CREATE TABLE IF NOT EXISTS sys._iam_mapped (none int);
CREATE OR REPLACE VIEW sys.iam_pg_role_mappings AS
    SELECT m.iam_oid, m.arn, m.pg_role_oid, r.rolname AS pg_role_name,
           m.grantor_pg_role_oid, g.rolname AS grantor_pg_role_name
    FROM sys._iam_mappings m
    JOIN pg_catalog.pg_roles r ON r.oid = m.pg_role_oid
    LEFT JOIN pg_catalog.pg_roles g ON g.oid = m.grantor_pg_role_oid;
GRANT SELECT ON sys.iam_pg_role_mappings TO PUBLIC;

DROP PROCEDURE IF EXISTS sys._aws_iam(boolean, text, text);
CREATE PROCEDURE sys._aws_iam(is_grant boolean, role_name text, arn text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller text := session_user;
    role_oid oid;
    verb text := CASE WHEN is_grant THEN 'GRANT' ELSE 'REVOKE' END;
BEGIN
    PERFORM sys._count_ddl();
    IF caller <> 'admin' THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = format('permission denied: only admin can run AWS IAM %s', verb);
    END IF;
    SELECT oid INTO role_oid FROM pg_roles WHERE rolname = role_name;
    IF role_oid IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '42704',
            MESSAGE = format('role "%s" does not exist', role_name);
    END IF;
    IF role_name = 'admin' THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = 'permission denied: the admin role cannot be mapped with AWS IAM ' || verb;
    END IF;
    IF is_grant THEN
        IF EXISTS (SELECT FROM sys._iam_mappings m
                   WHERE m.arn = _aws_iam.arn AND m.pg_role_oid = role_oid) THEN
            RAISE EXCEPTION USING ERRCODE = '42710', MESSAGE = format(
                'role "%s" is already granted to %s', role_name, arn);
        END IF;
        INSERT INTO sys._iam_mappings (iam_oid, arn, pg_role_oid, grantor_pg_role_oid)
        VALUES (coalesce((SELECT m.iam_oid FROM sys._iam_mappings m
                          WHERE m.arn = _aws_iam.arn LIMIT 1), nextval('sys._iam_oid')::oid),
                arn, role_oid, (SELECT oid FROM pg_roles WHERE rolname = caller));
        PERFORM set_config('dsql.internal', 'on', true);  -- not a DDL of the user's
        EXECUTE format('GRANT SELECT ON sys._iam_mapped TO %I', role_name);
        PERFORM set_config('dsql.internal', '', true);
    ELSE
        DELETE FROM sys._iam_mappings m WHERE m.arn = _aws_iam.arn AND m.pg_role_oid = role_oid;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format(
                'role "%s" is not granted to %s', role_name, arn);
        END IF;
        IF NOT EXISTS (SELECT FROM sys._iam_mappings m WHERE m.pg_role_oid = role_oid) THEN
            PERFORM set_config('dsql.internal', 'on', true);  -- not a DDL of the user's
            EXECUTE format('REVOKE SELECT ON sys._iam_mapped FROM %I', role_name);
            PERFORM set_config('dsql.internal', '', true);
        END IF;
    END IF;
END $$;
GRANT EXECUTE ON PROCEDURE sys._aws_iam(boolean, text, text) TO PUBLIC;

DELETE FROM sys._emulator;
INSERT INTO sys._emulator VALUES ({version});
""".replace("{version}", str(VERSION))
