"""The upgrade hash a review prints is the one ``upgrade --dry-run`` prints and
``upgrade --expect-hash`` checks on the same target (issue 17: the deploy runs what was
reviewed); what makes the emulator's hash and a target's differ."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from review_project import git, make_repo, review, write_revision

from _support import PrivateTarget
from dsql_migrate.cli import main

pytestmark = pytest.mark.integration

ADD_SKU = '''    op.add_column("items", sa.Column("sku", sa.String(20)))
    op.create_index("ix_items_sku", "items", ["sku"], unique=True)
'''
HASH = r"sha256:[0-9a-f]{64}"


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def dry_hash(url: str) -> str:
    dry = cli("upgrade", "--dry-run", "--url", url)
    assert dry.exit_code == 0, dry.output
    (found,) = re.findall(rf"^upgrade hash: ({HASH})$", dry.stdout, re.MULTILINE)
    return str(found)


def test_review_hash_is_the_dry_run_hash_and_pins_the_upgrade(
        workdir: Path, private_target: PrivateTarget) -> None:
    make_repo(workdir)
    with private_target("review") as target:
        url = target.url()
        assert cli("upgrade", "heads", "--url", url).exit_code == 0
        with psycopg.connect(url, autocommit=True) as conn:  # not touched by the change
            conn.execute("CREATE TABLE unrelated (id BIGINT PRIMARY KEY)")
        write_revision(workdir, "0002", "0001", ADD_SKU, "sku")
        git(workdir, "add", "-A")
        git(workdir, "commit", "-q", "-m", "the change")

        local = review()
        assert local.exit_code == 0, local.output
        (on_emulator,) = re.findall(rf"^Upgrade hash: `({HASH})` \(computed against local "
                                    r"emulator at the base", local.stdout, re.MULTILINE)
        assert f"upgrade hash: {on_emulator} (computed against local emulator" in local.stderr

        remote = review("--url", url, "--format", "json")
        assert remote.exit_code == 0, remote.output
        pinned = json.loads(remote.stdout)["upgrade_hash"]
        assert pinned["target"].startswith("postgresql://admin@127.0.0.1:")
        assert pinned["hash"] == dry_hash(url)
        # the emulator at the base and the target hold the same `items`: an unrelated table
        # does not change the hash
        assert pinned["hash"] == on_emulator

        # a grant on a table the change touches is part of its fingerprint: a target that
        # differs from the emulator there has another hash (review with --url to pin a deploy)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("GRANT SELECT ON items TO PUBLIC")
        granted = dry_hash(url)
        assert granted != on_emulator
        refused = cli("upgrade", "head", "--url", url, "--expect-hash", on_emulator)
        assert refused.exit_code == 5, refused.output
        assert granted in refused.output and on_emulator in refused.output
        applied = cli("upgrade", "head", "--url", url, "--expect-hash", granted,
                      "--log-format", "json")
        assert applied.exit_code == 0, applied.output
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
                ("0002",)]
