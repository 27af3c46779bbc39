"""Declared relationships: the CHILD.COL=PARENT.COL syntax (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsql_migrate.audit.references import parse_relationship, relationships_from_file
from dsql_migrate.errors import ConfigError


def test_simple_composite_and_schema_qualified() -> None:
    rel = parse_relationship("orders.customer_id=customers.id", "--relationship")
    assert (rel.child, rel.columns, rel.parent, rel.parent_columns) == (
        "orders", ("customer_id",), "customers", ("id",))
    assert rel.child_schema is None and rel.label == "orders (customer_id) -> customers (id)"
    rel = parse_relationship("app.lines.tenant_id, order_id = app.orders.tenant_id,id", "x")
    assert (rel.child_schema, rel.child, rel.columns) == ("app", "lines",
                                                          ("tenant_id", "order_id"))
    assert (rel.parent_schema, rel.parent_columns) == ("app", ("tenant_id", "id"))
    assert rel.label == "app.lines (tenant_id, order_id) -> app.orders (tenant_id, id)"


@pytest.mark.parametrize("spec", ["orders.customer_id", "orders=customers.id", "=.",
                                  "a.b.c.d=e.f", "orders.=customers.id", "o.a,,b=c.x,y"])
def test_malformed(spec: str) -> None:
    with pytest.raises(ConfigError, match="is not a relationship"):
        parse_relationship(spec, "--relationship")


def test_file_with_comments_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "refs.txt"
    path.write_text("# nightly\n\norders.customer_id=customers.id  # the main one\n"
                    "lines.order_id=orders\n")
    with pytest.raises(ConfigError, match=r"refs.txt:4: 'lines.order_id=orders' is not"):
        relationships_from_file(path)
    path.write_text("orders.customer_id=customers.id  # the main one\n")
    (rel,) = relationships_from_file(path)
    assert rel.source.endswith("refs.txt:1")
