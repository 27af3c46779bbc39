"""The SQL parser (pglast) is loaded only by what parses SQL: ``dsql_migrate.roles`` reads role
statements of a desired-state .sql file with it, and the diff imports ``roles``; a model
target (a SQLAlchemy MetaData) is planned without it. (A model that declares roles writes
their statements with ``dsql_migrate.sql.quoting``, and the ``dsql_migrate.sql`` package
imports the parser with it.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has imported after running ``code``."""
    code += "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_diff_does_not_import_the_sql_parser() -> None:
    modules = _modules_after("import dsql_migrate.diff, dsql_migrate.roles")
    assert "dsql_migrate.roles" in modules
    assert "pglast" not in modules


def test_planning_a_model_target_does_not_import_the_sql_parser(scratch_url: str) -> None:
    modules = _modules_after(textwrap.dedent(f"""\
        import sqlalchemy as sa
        from dsql_migrate.diff import Desired, diff_live
        from dsql_migrate.planner import plan
        from dsql_migrate.profiles import CURRENT

        model = sa.MetaData()
        sa.Table("orders", model, sa.Column("id", sa.BigInteger, primary_key=True))
        result, live = diff_live({scratch_url!r}, Desired(metadata=model, source="model"))
        planned = plan(result.ops, live, result.desired, CURRENT)
        assert planned.steps, planned
        """))
    assert "dsql_migrate.planner" in modules
    assert "pglast" not in modules
