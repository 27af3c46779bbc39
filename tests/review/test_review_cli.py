"""``dsql-migrate review`` on temporary git repositories, each review on its own fresh emulator."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from review_project import ITEMS, git, make_repo, review, write_revision

from _support import PrivateTarget
from dsql_migrate.cli import main
from dsql_migrate.cli._common import AppContext
from dsql_migrate.cli.migrations import scaffold
from dsql_migrate.review import MARKER, Request, render, run_review

pytestmark = pytest.mark.integration

ADD_SKU = '''    op.add_column("items", sa.Column("sku", sa.String(20)))
    op.create_index("ix_items_sku", "items", ["sku"], unique=True)
'''
DROP_NAME = '''    op.drop_column("items", "name")
'''
RAW_SQL = '''    op.add_column("items", sa.Column("note", sa.Text))
    op.execute("CREATE INDEX ix_items_qty ON items (qty)")
    op.execute("TRUNCATE items")
'''


def test_a_new_revision_is_compiled_and_explained(workdir: Path) -> None:
    make_repo(workdir)
    write_revision(workdir, "0002", "0001",
                   ADD_SKU + '    op.execute("UPDATE items SET qty = 0")\n', "sku")
    result = review()
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.splitlines()[0] == MARKER
    assert "### dsql-migrate review: ready: every step is DSQL-safe" in text
    assert "Base: merge base of HEAD and main" in text
    row = next(line for line in text.splitlines() if line.startswith("| `0002`"))
    assert row == "| `0002` sku | new | 4 | 0 |  | 1 | 1 | ✅ ok |"
    assert "<details><summary><b>0002</b> sku: 4 steps" in text
    assert "3. create index ix_items_sku on items (async job, waited for)\n" in text
    assert ("**Async indexes and validations:**\n\n- step 3: create index ix_items_sku on "
            "items (async job, waited for)\n") in text
    # a lint warning of op.execute SQL: on its line, with its fix, once (not a plan warning)
    assert ("- **unbatched_dml** (`migrations/versions/0002_sku.py:20`): op.execute #1 "
            "(statement 1, line 1 of its SQL): UPDATE on items has no WHERE clause") in text
    assert "**Fix:** run it in batches of at most 1,000 rows" in text
    assert "plan-warning" not in text
    assert "CREATE UNIQUE INDEX ASYNC ix_items_sku ON items (sku)" in text
    assert "review: ready" in result.stderr
    assert not (workdir / ".dsql-migrate").exists()  # the fresh emulator is gone


def test_destructive_steps_need_approval(workdir: Path) -> None:
    make_repo(workdir)
    path = write_revision(workdir, "0002", "0001", DROP_NAME, "drop name")
    unapproved = review("-o", "review.md")
    assert unapproved.exit_code == 5, unapproved.output
    text = (workdir / "review.md").read_text()
    assert "destructive steps need approval (0002)" in text
    assert "| 1 |" in next(line for line in text.splitlines() if line.startswith("| `0002`"))
    assert "⛔ needs approval" in text

    flagged = review("--approve-destructive", "--format", "json")
    assert flagged.exit_code == 0, flagged.output
    data = json.loads(flagged.stdout)
    (revision,) = data["revisions"]
    assert revision["approved"] is True
    assert revision["approved_by"] == "--approve-destructive"
    assert data["summary"]["destructive_steps"] == 1 and data["summary"]["unapproved"] == []
    assert data["exit_code"] == 0 and data["format"] == "dsql-migrate.review/1"
    plan = revision["compilations"][0]["plan"]
    assert [s["destructive"] for s in plan["steps"]].count(True) == 1

    body = path.read_text().replace("def upgrade() -> None:\n",
                                    "def upgrade() -> None:\n    # dsql-migrate: "
                                    "approve-destructives\n")
    path.write_text(body)
    annotated = review("--format", "sarif")
    assert annotated.exit_code == 5, "not the annotation: approve-destructives"
    path.write_text(body.replace("destructives", "destructive (name is unused since v2)"))
    annotated = review("--format", "sarif")
    assert annotated.exit_code == 0, annotated.output
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1)
                if "approve-destructive" in t)
    (finding,) = json.loads(annotated.stdout)["runs"][0]["results"]
    assert finding["ruleId"] == "destructive" and finding["level"] == "note"
    assert finding["locations"][0]["physicalLocation"]["region"]["startLine"] == line
    assert f"approved by line {line}" in finding["message"]["text"]


def test_refused_sql_is_located_with_its_rule_in_every_format(workdir: Path) -> None:
    make_repo(workdir)
    path = write_revision(workdir, "0002", "0001", RAW_SQL, "raw sql")
    write_revision(workdir, "0003", "0002", ADD_SKU, "sku")
    found = run_review(AppContext().config, Request(ini=Path("alembic.ini")))
    assert int(found.exit_code()) == 1
    lines = path.read_text().splitlines()
    index_line = next(i for i, t in enumerate(lines, 1) if "CREATE INDEX" in t)
    truncate_line = next(i for i, t in enumerate(lines, 1) if "TRUNCATE" in t)

    sarif = json.loads(render(found, "sarif"))
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    located = {(r["ruleId"], r["level"],
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["locations"][0]["physicalLocation"]["region"]["startLine"])
               for r in run["results"]}
    uri = "migrations/versions/0002_raw_sql.py"
    assert located == {("index_async", "error", uri, index_line),
                       ("truncate", "error", uri, truncate_line)}
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in run["results"])
    fixes = {r["ruleId"]: r["message"]["text"] for r in run["results"]}
    assert "fixed SQL: CREATE INDEX ASYNC ix_items_qty ON items (qty)" in fixes["index_async"]
    assert "TRUNCATE is not supported in DSQL" in fixes["truncate"]

    data = json.loads(render(found, "json"))
    first, second = data["revisions"]
    assert "DSQL cannot do what this revision asks" in first["compilations"][0]["refused"]
    assert second["compilations"][0]["not_compiled"].startswith("not compiled: revision 0002")
    assert data["exit_code"] == 1 and data["summary"]["refused"] == 1

    text = render(found, "markdown")
    assert text.startswith(MARKER + "\n### dsql-migrate review: refused")
    assert "| `0002` raw sql | new | - | - |" in text
    assert "⛔ refused" in text and "⏸ not compiled" in text
    assert f"**index_async** (`{uri}:{index_line}`)" in text
    assert "**Fix:** use CREATE INDEX ASYNC" in text


def test_a_refused_op_exits_1_and_says_which_dsql_rule(workdir: Path) -> None:
    make_repo(workdir)
    path = write_revision(workdir, "0002", "0001",
                          '    op.add_column("items", sa.Column("state", '
                          'sa.Enum("new", "done", name="item_state")))\n', "state enum")
    result = review("--format", "json")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    data = json.loads(result.stdout)
    (finding,) = data["revisions"][0]["findings"]
    assert finding["rule"] == "refused" and finding["level"] == "error"
    assert "CREATE TYPE ... AS ENUM, which DSQL rejects in every profile" in finding["message"]
    assert finding["path"] == "migrations/versions/0002_state_enum.py"
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "sa.Enum" in t)
    assert finding["line"] == line


def test_with_url_the_target_is_read_only_and_its_sizes_give_estimates(
        workdir: Path, private_target: PrivateTarget) -> None:
    make_repo(workdir)
    with private_target("review") as target:
        url = target.url()
        upgraded = CliRunner().invoke(main, ["upgrade", "heads", "--url", url])
        assert upgraded.exit_code == 0, upgraded.output
        with psycopg.connect(target.raw_url(), autocommit=True) as conn:
            for start in range(0, 7000, 1000):
                conn.execute("INSERT INTO items (id, name, qty) SELECT g, 'n', 1 FROM "
                             f"generate_series({start + 1}, {start + 1000}) g")
            conn.execute("ANALYZE items")
        write_revision(workdir, "0002", "0001",
                       '    op.alter_column("items", "qty", type_=sa.BigInteger(), '
                       'existing_type=sa.Integer())\n', "qty bigint")
        git(workdir, "add", "-A")
        git(workdir, "commit", "-q", "-m", "the change")
        result = review("--url", url, "--approve-destructive", "--seconds-per-batch", "2")
        assert result.exit_code == 0, result.output
        text = result.stdout
        assert "and against `postgresql://admin@127.0.0.1:" in text
        assert "`items` (~7,000 rows, 3 batches)" in text
        assert "- `items`: ~7,000 rows in 3 batches of <= 2,995, ~6 s" in text
        assert "Times assume 2 s per batch" in text
        with psycopg.connect(target.raw_url(), autocommit=True) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
                ("0001",)]
            tables = {r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            assert tables == {"alembic_version", "items"}
            assert conn.execute("SELECT data_type FROM information_schema.columns WHERE "
                                "table_name = 'items' AND column_name = 'qty'").fetchone() == (
                                    "integer",)


def test_a_revision_that_uses_the_connection_stops_there(workdir: Path) -> None:
    make_repo(workdir)
    path = write_revision(workdir, "0002", "0001",
                          '    op.add_column("items", sa.Column("note", sa.Text))\n'
                          '    rows = op.get_bind().execute(sa.text("SELECT count(*) FROM '
                          'items")).scalar()\n'
                          '    op.execute(f"UPDATE items SET note = \'{rows}\'")\n', "uses bind")
    result = review("--format", "json")
    assert result.exit_code == 1, result.output
    (finding,) = json.loads(result.stdout)["revisions"][0]["findings"]
    assert finding["rule"] == "needs-connection"
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "get_bind" in t)
    assert finding["line"] == line
    assert "SELECT count(*) FROM items" in finding["message"]


def test_a_project_the_change_introduces_is_compiled_from_an_empty_database(
        workdir: Path) -> None:
    git(workdir, "init", "-q", "-b", "main")
    git(workdir, "config", "user.email", "review@example.com")
    git(workdir, "config", "user.name", "review")
    (workdir / "README").write_text("an application\n")
    git(workdir, "add", "-A")
    git(workdir, "commit", "-q", "-m", "before migrations")
    git(workdir, "checkout", "-q", "-b", "change")
    scaffold(workdir, "migrations")
    write_revision(workdir, "0001", None, ITEMS, "items")
    write_revision(workdir, "0002", "0001", ADD_SKU, "sku")
    result = review("--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["base"]["heads"] == []
    assert [(r["revision"], r["status"]) for r in data["revisions"]] == [
        ("0001", "new"), ("0002", "new")]
    first = data["revisions"][0]["compilations"][0]["plan"]["steps"]
    assert first[0]["sql"][0].startswith("CREATE TABLE items")


def test_a_project_in_a_subdirectory_with_a_relative_script_location(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(workdir, "init", "-q", "-b", "main")
    git(workdir, "config", "user.email", "review@example.com")
    git(workdir, "config", "user.name", "review")
    app = workdir / "app"
    app.mkdir()
    ini = scaffold(app, "migrations")
    ini.write_text(ini.read_text().replace("%(here)s/migrations", "migrations"))
    (workdir / ".gitignore").write_text(".dsql-migrate/\n__pycache__/\n")
    write_revision(app, "0001", None, ITEMS, "items")
    git(workdir, "add", "-A")
    git(workdir, "commit", "-q", "-m", "base")
    write_revision(app, "0002", "0001", DROP_NAME, "drop name")
    monkeypatch.chdir(app)
    result = review("--format", "json")
    assert result.exit_code == 5, result.output
    data = json.loads(result.stdout)
    assert data["base"]["heads"] == ["0001"]
    (revision,) = data["revisions"]
    assert revision["path"] == "app/migrations/versions/0002_drop_name.py"
    assert revision["findings"][0]["path"] == revision["path"]


def test_an_unreachable_target_is_one_clear_line_without_its_password(workdir: Path) -> None:
    make_repo(workdir)
    write_revision(workdir, "0002", "0001", ADD_SKU, "sku")
    result = review("--url", "postgresql://admin:s3cret-pw@127.0.0.1:9/postgres")
    assert result.exit_code == 1, result.output
    assert "s3cret-pw" not in result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: "), result.stderr


def test_an_unapproved_destructive_op_execute_is_located_on_its_line(workdir: Path) -> None:
    # found by review: SARIF put "DELETE FROM items" on the 'def upgrade' line, not its own
    make_repo(workdir)
    path = write_revision(workdir, "0002", "0001",
                          '    op.add_column("items", sa.Column("note", sa.Text))\n'
                          '    op.execute("DELETE FROM items WHERE qty = 0")\n', "purge")
    result = review("--format", "sarif")
    assert result.exit_code == 5, result.output
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "DELETE" in t)
    (finding,) = [r for r in json.loads(result.stdout)["runs"][0]["results"]
                  if r["ruleId"] == "destructive"]
    assert "DELETE FROM items" in finding["message"]["text"]
    assert finding["locations"][0]["physicalLocation"]["region"]["startLine"] == line


def test_a_revision_whose_code_raises_is_a_failure_of_its_code_not_of_dsql(
        workdir: Path) -> None:
    # found by review: a ValueError in upgrade() read "refused: DSQL cannot run part of this
    # change" with the hint "revisions before it stay applied" (a review applies nothing)
    make_repo(workdir)
    path = write_revision(workdir, "0002", "0001", '    raise ValueError("boom")\n', "boom")
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "raise" in t)
    result = review()
    assert result.exit_code == 1, result.output
    assert "### dsql-migrate review: failed: a revision's code raised an error" in result.stdout
    assert f"**revision-code-error** (`migrations/versions/0002_boom.py:{line}`)" in result.stdout
    assert "ValueError: boom" in result.stdout
    assert "stay applied" not in result.output and "DSQL cannot" not in result.output


def test_a_revision_with_a_syntax_error_is_a_usage_error_that_says_where(
        workdir: Path) -> None:
    make_repo(workdir)
    path = write_revision(workdir, "0002", "0001", '    op.add_column("items",\n', "broken")
    result = review()
    assert result.exit_code == 2, result.output
    assert f"error: {path}:" in result.stderr and "SyntaxError" in result.stderr
    assert "stay applied" not in result.stderr and "review again" in result.stderr
    assert "Traceback" not in result.output
