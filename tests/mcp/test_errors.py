"""What an agent sees when a tool fails (no database, no server process)."""

from __future__ import annotations

import psycopg
import pytest

from dsql_migrate.errors import ConfigError
from dsql_migrate.mcp.server import _tool_error
from dsql_migrate.mcp.service import Refused, Service, ServiceSettings


def test_user_errors_carry_message_and_hint() -> None:
    error = _tool_error(ConfigError("no table 'x' in the live schema", hint="tables: a, b"))
    assert error is not None and str(error) == "no table 'x' in the live schema\nhint: tables: a, b"
    database = _tool_error(psycopg.errors.InsufficientPrivilege("permission denied for table t"))
    assert database is not None and "the database refused: permission denied" in str(database)
    assert _tool_error(RuntimeError("a bug")) is None  # the SDK's generic failure, logged


def test_transact_is_off_without_allow_writes() -> None:
    from dsql_migrate.config import Config
    from dsql_migrate.connect import Target
    from dsql_migrate.profiles import get_profile

    service = Service(Config(), Target("postgresql", "postgresql://nowhere/db", "--url"),
                      get_profile("current"), ServiceSettings())
    with pytest.raises(Refused, match="writes outside a plan are off"):
        service.transact(["CREATE TABLE t (id bigint PRIMARY KEY)"])
    with pytest.raises(Refused, match="exactly one statement"):
        service.readonly_query("SELECT 1; SELECT 2")
    linted = service.lint("CREATE TABLE t (id serial PRIMARY KEY);")
    assert linted["exit_code"] == 1 and linted["diagnostics"]
