from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

from dsql_migrate.query import position_in, to_jsonable


def test_position_in_counts_lines_and_columns() -> None:
    statement = "select 1,\n  nope\nfrom t"
    assert position_in(statement, 1) == (1, 1)
    assert position_in(statement, statement.index("nope") + 1) == (2, 3)


def test_values_become_json() -> None:
    values = [
        None, True, 3, 1.5, "x", decimal.Decimal("1.10"), dt.date(2026, 1, 2),
        dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), uuid.UUID(int=1), b"\x00\x01",
        [1, decimal.Decimal("2")], {"a": dt.time(1, 2)}, dt.timedelta(seconds=90),
    ]
    converted = [to_jsonable(v) for v in values]
    json.dumps(converted)  # must not raise
    assert converted[5] == "1.10"
    assert converted[7] == "2026-01-02T03:04:05+00:00"
    assert converted[9] == "base64:AAE="
    assert converted[10] == [1, "2"]
