"""Review findings on the MCP tools (issue 20, point 1): each test failed before its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from dsql_migrate.config import Config
from dsql_migrate.connect import Target
from dsql_migrate.errors import ConfigError, ConnectError, DsqlMigrateError
from dsql_migrate.mcp.server import _tool_error
from dsql_migrate.mcp.service import Service, ServiceSettings
from dsql_migrate.profiles import get_profile

UNREACHABLE = "postgresql://admin:s3cretPW@127.0.0.1:1/postgres"


def _service(url: str) -> Service:
    return Service(Config(), Target("postgresql", url, "--url"), get_profile("current"),
                   ServiceSettings())


@pytest.mark.parametrize("max_rows", [0, -3])
def test_readonly_query_refuses_a_row_cap_below_one(max_rows: int) -> None:
    # was: -3 reached psycopg's fetchmany ("the database refused: rows must be included
    # between 0 and ..."), 0 silently meant the server's default cap
    with pytest.raises(ConfigError, match="max_rows must be at least 1"):
        _service(UNREACHABLE).readonly_query("SELECT 1", max_rows)


def test_plan_on_an_unreachable_target_says_so_without_the_password() -> None:
    # was: SQLAlchemy's OperationalError escaped, the agent saw only "Error executing tool plan"
    with pytest.raises(ConnectError) as caught:
        _service(UNREACHABLE).plan(desired_sql="CREATE TABLE t (id int PRIMARY KEY);")
    error = _tool_error(caught.value)
    assert error is not None and "could not connect to 127.0.0.1:1" in str(error)
    assert "s3cretPW" not in str(error)


def test_a_sqlalchemy_database_error_is_a_tool_error() -> None:
    orig = psycopg.errors.InsufficientPrivilege("permission denied for schema s")
    wrapped = sa.exc.ProgrammingError("SELECT ...", None, orig)
    error = _tool_error(wrapped)
    assert error is not None and "the database refused: permission denied" in str(error)


_MEMORY_PROBE = """
import resource, sys
from dsql_migrate.config import Config
from dsql_migrate.connect import Target
from dsql_migrate.mcp.service import Service, ServiceSettings
from dsql_migrate.profiles import get_profile
service = Service(Config(), Target("postgresql", sys.argv[1], "--url"), get_profile("current"),
                  ServiceSettings())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = service.readonly_query(
    "SELECT g, repeat('x', 1000000) FROM generate_series(1, 250) g", 2)
assert result["row_count"] == 2 and result["truncated"], result
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_readonly_query_row_cap_bounds_memory(dsql_url: str) -> None:
    # was: the whole result (250 MB here) was read into memory before the cap applied
    probe = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, dsql_url],
                           capture_output=True, text=True, timeout=240, check=True)
    grown_mb = int(probe.stdout.strip())
    assert grown_mb < 100, f"readonly_query grew by {grown_mb} MB for 2 rows"


def test_readonly_query_statement_without_rows(dsql_url: str) -> None:
    # a SET runs (and is rolled back with the transaction): no rows, not an error
    result = _service(dsql_url).readonly_query("SET LOCAL work_mem = '8MB'")
    assert result["columns"] == [] and result["rows"] == []
    assert result["status"] == "SET"


def test_readonly_query_without_matching_rows_keeps_its_columns(dsql_url: str) -> None:
    result = _service(dsql_url).readonly_query("SELECT 1 AS a, 'x'::text AS b WHERE false")
    assert result["columns"] == ["a", "b"] and result["rows"] == []
    assert result["row_count"] == 0 and not result["truncated"]


def test_plan_reloads_an_edited_model(dsql_url: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # was: the long-lived server kept the first import, so after the agent edited its model
    # plan returned the old plan again (same hash), without the new table
    package = tmp_path / "review20_models"
    package.mkdir()
    model = ("import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
             "sa.Table('review20_a', metadata, sa.Column('id', sa.Integer, primary_key=True))\n")
    (package / "__init__.py").write_text(model, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    service = _service(dsql_url)
    first = service.plan(target="review20_models:metadata")
    (package / "__init__.py").write_text(
        model + "sa.Table('review20_b', metadata, sa.Column('id', sa.Integer, "
        "primary_key=True))\n", encoding="utf-8")
    second = service.plan(target="review20_models:metadata")
    summaries = [step["summary"] for step in second["plan"]["steps"]]
    assert "create table review20_b" in summaries and second["hash"] != first["hash"]


def test_desired_sql_errors_point_at_desired_sql_not_a_temp_file(dsql_url: str,
                                                               raw_url: str) -> None:
    # was: "/tmp/dsqlm-mcp-xxxx/desired.sql:1:36: syntax error", a file the agent never saw
    service = Service(Config(), Target("postgresql", dsql_url, "--url"),
                      get_profile("current"), ServiceSettings(scratch_url=raw_url))
    with pytest.raises(DsqlMigrateError) as caught:
        service.plan(desired_sql="CREATE TABLE x (id int PRIMARY KEY,, y int);")
    assert caught.value.message.startswith("desired_sql:1:36: syntax error")
