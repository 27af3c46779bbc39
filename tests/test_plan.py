"""Plan: canonical JSON, hash, loading back, renderers (no database)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dsql_migrate.plan import (
    FORMAT,
    Batch,
    Estimate,
    Plan,
    PlanError,
    PlanHashMismatch,
    Step,
    StepKind,
    executable_sql,
    render,
    summary_line,
)


def sample_plan() -> Plan:
    batch = Batch(
        table="orders",
        key=("id",),
        key_types=("bigint",),
        size=1000,
        bounds="SELECT id FROM orders ORDER BY id LIMIT 1",
    )
    steps = (
        Step(1, StepKind.DDL, "add column orders.status",
             ("ALTER TABLE orders ADD COLUMN status text",), table="orders"),
        Step(2, StepKind.BACKFILL, "backfill orders.status", (
            "UPDATE orders SET status = 'new' WHERE id > %(after_1)s",), table="orders",
            batch=batch, estimate=Estimate(rows=5000, batches=5, transactions=5)),
        Step(3, StepKind.ASYNC_INDEX, "create index ix_orders_status",
             ("CREATE INDEX ASYNC ix_orders_status ON orders (status)",), table="orders",
             details={"index": "ix_orders_status"}, estimate=Estimate(async_jobs=1)),
        Step(4, StepKind.DDL, "drop table legacy | old", ("DROP TABLE legacy",),
             table="legacy", destructive=True, reversible=False),
    )
    return Plan(profile="current", steps=steps, source={"target": "models:Base"},
                warnings=("table legacy is dropped",))


def test_json_round_trip_keeps_hash_and_content() -> None:
    plan = sample_plan()
    text = plan.to_json()
    loaded = Plan.from_json(text)
    assert loaded == plan
    assert loaded.hash == plan.hash
    assert loaded.to_json() == text


def test_json_is_byte_identical_for_equal_plans_and_has_the_contract_fields() -> None:
    first, second = sample_plan().to_json(), sample_plan().to_json()
    assert first == second
    data = json.loads(first)
    assert data["format"] == FORMAT
    assert data["hash"].startswith("sha256:") and len(data["hash"]) == 7 + 64
    assert set(data["steps"][0]) >= {"id", "kind", "summary", "sql", "table", "destructive",
                                    "reversible", "estimate"}
    assert data["summary"]["steps"] == 4
    assert data["summary"]["destructive"] == 1
    assert data["summary"]["batches"] == 5
    assert data["summary"]["async_jobs"] == 1


def test_hash_ignores_estimates_summaries_warnings_and_source() -> None:
    plan = sample_plan()
    changed = dataclasses.replace(
        plan,
        source={"target": "other"},
        warnings=(),
        steps=tuple(dataclasses.replace(s, summary="x", estimate=Estimate(rows=1), notes=("n",))
                    for s in plan.steps),
    )
    assert changed.hash == plan.hash


@pytest.mark.parametrize("change", ["sql", "kind", "batch", "details", "order"])
def test_hash_covers_what_executes(change: str) -> None:
    plan = sample_plan()
    steps = list(plan.steps)
    if change == "sql":
        steps[0] = dataclasses.replace(steps[0], sql=("ALTER TABLE orders ADD COLUMN s text",))
    elif change == "kind":
        steps[0] = dataclasses.replace(steps[0], kind=StepKind.DML)
    elif change == "batch":
        assert steps[1].batch is not None
        steps[1] = dataclasses.replace(steps[1],
                                       batch=dataclasses.replace(steps[1].batch, size=999))
    elif change == "details":
        steps[2] = dataclasses.replace(steps[2], details={"index": "other"})
    else:
        steps[0], steps[3] = (dataclasses.replace(steps[3], id=1),
                              dataclasses.replace(steps[0], id=4))
    assert dataclasses.replace(plan, steps=tuple(steps)).hash != plan.hash


def test_tampered_plan_is_refused() -> None:
    data = json.loads(sample_plan().to_json())
    data["steps"][0]["sql"] = ["DROP TABLE orders"]
    with pytest.raises(PlanHashMismatch) as info:
        Plan.from_json(json.dumps(data), where="plan.json")
    assert "plan.json" in str(info.value)
    assert info.value.exit_code == 5
    # loading without verification is possible (e.g. to show what changed)
    assert Plan.from_json(json.dumps(data), verify=False).steps[0].sql == ("DROP TABLE orders",)


@pytest.mark.parametrize("text, expected", [
    ("{not json", "plan.json:1:2"),
    ('{"format": "other"}', "not a dsql-migrate plan"),
    ("[]", "JSON object"),
    ('{"format": "dsql-migrate.plan/1", "profile": "current"}', "malformed"),
])
def test_bad_plan_files_give_clear_errors(text: str, expected: str) -> None:
    with pytest.raises(PlanError) as info:
        Plan.from_json(text, where="plan.json")
    assert expected in str(info.value)


def test_markdown_has_summary_table_destructive_marks_sql_blocks_and_warnings() -> None:
    md = render(sample_plan(), "markdown")
    lines = md.splitlines()
    assert lines[0] == "### dsql-migrate plan"
    assert "4 steps on 2 tables, 1 destructive, ~8 transactions, 5 batches, 1 async jobs" in md
    table_rows = [line for line in lines if line.startswith("| ")]
    assert len(table_rows) == 1 + 4  # header + steps
    assert "**yes**" in table_rows[4] and "**yes**" not in table_rows[1]
    assert "drop table legacy \\| old" in table_rows[4]  # pipes escaped
    assert md.count("<details>") == 4 and md.count("</details>") == 4
    assert "```sql\nCREATE INDEX ASYNC ix_orders_status ON orders (status);\n```" in md
    assert "keyset batches of <= 1000 rows on orders (id)" in md
    assert "- ⚠️ table legacy is dropped" in md


def test_text_rendering_lists_every_step_and_the_sql() -> None:
    text = render(sample_plan(), "text", width=120)
    assert "4 steps on 2 tables" in text
    for step in sample_plan().steps:
        assert step.sql[0] in text
    assert "destructive" in text
    assert "warning: table legacy is dropped" in text
    assert "\x1b[" not in text  # no colour codes unless asked


def test_empty_plan_renders_no_changes() -> None:
    plan = Plan(profile="classic", steps=())
    assert "No changes" in render(plan, "markdown")
    assert "No changes" in render(plan, "text")
    assert json.loads(render(plan, "json"))["steps"] == []


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(PlanError):
        render(sample_plan(), "yaml")


def test_executable_sql_is_plain_sql_for_a_linter() -> None:
    plan = sample_plan()
    backfill = plan.steps[1]
    statements = executable_sql(backfill)
    assert statements == ["UPDATE orders SET status = 'new' WHERE id > NULL",
                          "SELECT id FROM orders ORDER BY id LIMIT 1"]
    index = executable_sql(plan.steps[2])
    assert index == ["CREATE INDEX ASYNC ix_orders_status ON orders (status)"]


def test_text_rendering_does_not_eat_brackets() -> None:
    step = Step(1, StepKind.DDL, "create table [odd]", ('CREATE TABLE "[odd]" (id bigint)',),
                table="[odd]")
    text = render(Plan(profile="current", steps=(step,), warnings=("[odd] warning",)), "text",
                  width=150)
    assert "create table [odd]" in text and "warning: [odd] warning" in text


def test_approval_of_destructive_steps_is_part_of_the_hash() -> None:
    plan = sample_plan()
    approved = plan.approved()
    assert approved.steps == plan.steps and approved.approved_destructive
    assert approved.hash != plan.hash
    assert dataclasses.replace(approved, approved_destructive=False).hash == plan.hash
    again = Plan.from_json(approved.to_json())
    assert again.approved_destructive and again.hash == approved.hash
    forged = json.loads(plan.to_json())
    forged["approved_destructive"] = True
    with pytest.raises(PlanHashMismatch):
        Plan.from_json(json.dumps(forged))
    assert "(approved)" in summary_line(approved) and "(approved)" not in summary_line(plan)
