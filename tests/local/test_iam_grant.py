"""The emulator's ``AWS IAM GRANT`` / ``AWS IAM REVOKE`` and ``sys.iam_pg_role_mappings``
(DSQL.md §5; the view's columns as AWS's "Using database roles and IAM authentication" shows
them)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from dsql_migrate.local.rules import rewrite
from dsql_migrate.profiles import CURRENT

ARN = "arn:aws:iam::111122223333:role/Example"


def test_rewritten_into_a_call_of_the_emulator() -> None:
    found = rewrite("AWS IAM GRANT example TO 'arn:aws:iam::111122223333:role/x';", CURRENT)
    assert found.sql == ("CALL sys._aws_iam(true, 'example', "
                         "'arn:aws:iam::111122223333:role/x')")
    found = rewrite('aws iam revoke "Mixed" from \'arn:aws:iam::111122223333:role/x\'', CURRENT)
    assert found.sql is not None and "(false, 'Mixed'," in found.sql
    bad = rewrite("AWS IAM GRANT example FROM 'arn:aws:iam::111122223333:role/x'", CURRENT)
    assert bad.sql is not None and "42601" in bad.sql and "takes TO" in bad.sql


@pytest.fixture
def role(conn: psycopg.Connection[Any]) -> Any:
    name = f"iam_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE ROLE {name} WITH LOGIN")
    yield name
    for (arn,) in conn.execute("SELECT arn FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s",
                               (name,)).fetchall():
        conn.execute(f"AWS IAM REVOKE {name} FROM '{arn}'")
    conn.execute(f"DROP ROLE IF EXISTS {name}")


def test_grant_is_recorded_as_dsql_shows_it(conn: psycopg.Connection[Any], role: str) -> None:
    conn.execute(f"AWS IAM GRANT {role} TO '{ARN}'")
    cur = conn.execute("SELECT * FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s",
                       (role,))
    assert [c.name for c in cur.description or ()] == [
        "iam_oid", "arn", "pg_role_oid", "pg_role_name", "grantor_pg_role_oid",
        "grantor_pg_role_name"]
    rows = cur.fetchall()
    role_oid = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    admin_oid = conn.execute("SELECT oid FROM pg_roles WHERE rolname = 'admin'").fetchone()
    assert role_oid is not None and admin_oid is not None
    assert len(rows) == 1
    iam_oid, arn, pg_role_oid, name, grantor_oid, grantor = rows[0]
    assert (arn, pg_role_oid, name, grantor_oid, grantor) == (
        ARN, role_oid[0], role, admin_oid[0], "admin")
    assert iam_oid
    # a second grant of the same mapping is an error; after the revoke the role can be dropped
    with pytest.raises(psycopg.errors.DuplicateObject):
        conn.execute(f"AWS IAM GRANT {role} TO '{ARN}'")
    conn.execute(f"AWS IAM REVOKE {role} FROM '{ARN}'")
    assert conn.execute("SELECT count(*) FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s",
                        (role,)).fetchone() == (0,)
    conn.execute(f"DROP ROLE {role}")


def test_a_mapped_role_cannot_be_dropped(conn: psycopg.Connection[Any], role: str) -> None:
    conn.execute(f"AWS IAM GRANT {role} TO '{ARN}'")
    with pytest.raises(psycopg.errors.DependentObjectsStillExist,
                       match="cannot be dropped because some objects depend on it"):
        conn.execute(f"DROP ROLE {role}")


def test_unknown_role_and_non_admin_are_refused(conn: psycopg.Connection[Any], dsql_url: str,
                                                role: str) -> None:
    with pytest.raises(psycopg.errors.UndefinedObject, match='role "no_such_role" does not'):
        conn.execute(f"AWS IAM GRANT no_such_role TO '{ARN}'")
    with pytest.raises(psycopg.errors.UndefinedObject, match="is not granted"):
        conn.execute(f"AWS IAM REVOKE {role} FROM '{ARN}'")
    as_role = dsql_url.replace("//admin@", f"//{role}@", 1)
    assert as_role != dsql_url
    with psycopg.connect(as_role, autocommit=True) as other:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only admin"):
            other.execute(f"AWS IAM GRANT {role} TO '{ARN}'")
        # the mappings are readable (a role can see what it is mapped to)
        assert other.execute("SELECT count(*) FROM sys.iam_pg_role_mappings").fetchone()


def test_one_ddl_per_transaction(conn: psycopg.Connection[Any], role: str) -> None:
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="multiple ddl"), \
            conn.transaction():
        conn.execute(f"AWS IAM GRANT {role} TO '{ARN}'")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    assert conn.execute("SELECT count(*) FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s",
                        (role,)).fetchone() == (0,)
