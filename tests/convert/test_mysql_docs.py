"""docs/moving-from-mysql.md shows what the MySQL front end really writes for its example."""

from __future__ import annotations

import re
from pathlib import Path

from dsql_migrate.convert import Action
from dsql_migrate.convert.mysql import mysql_to_postgresql

PAGE = Path(__file__).resolve().parents[2] / "docs" / "moving-from-mysql.md"


def test_the_example_output_is_what_the_front_end_writes() -> None:
    blocks = re.findall(r"```sql\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    source, shown = blocks[0], blocks[1]
    out, changes = mysql_to_postgresql(source, "shop.sql")
    assert "".join(sql + ";\n" for _line, sql in out) == shown
    removed = " ".join(c.message for c in changes if c.action is Action.REMOVED)
    assert "ON UPDATE CURRENT_TIMESTAMP" in removed and "FULLTEXT" in removed
    assert "LOCK TABLES" in removed and "UNLOCK TABLES" in removed
