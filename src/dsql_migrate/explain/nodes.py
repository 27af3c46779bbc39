"""What DSQL's own plan nodes mean, for the report (a registry: node type -> explanation).

Verified against AWS's documentation ("Working with Aurora DSQL EXPLAIN plans", "Reading Aurora
DSQL EXPLAIN plans") and the seed guide's plan-interpretation reference: DSQL has no heap (the
primary key *is* the table, its other columns INCLUDEd), a logical scan decomposes into a
Storage Scan over a B-Tree Scan, an Index Scan adds a parallel Storage Lookup branch (over a
B-Tree Lookup) for the columns the index does not cover, and predicates are evaluated at three
layers: Index Cond, storage ``Filters`` (before the data leaves storage) and the query
processor's ``Filter`` (after the transfer). The emulator runs PostgreSQL, whose plans have
none of these nodes; the report explains them only when a plan has them.
"""

from __future__ import annotations

DSQL_NODES: dict[str, str] = {
    "Full Scan (btree-table)": (
        "a scan of the whole table in primary-key order (DSQL has no heap: the primary key "
        "index is the table). Unlike PostgreSQL's Seq Scan it can push filters down to "
        "storage; its own `Filter` runs in the query processor, after the rows were "
        "transferred."),
    "Storage Scan": (
        "a read of more than one row from the storage layer through the pushdown compute "
        "engine; its `Filters` and `Projections` are applied in storage, before the data "
        "crosses the network, so predicates evaluated here are the cheap ones."),
    "B-Tree Scan": "the physical read of rows from a B-tree in storage (under a Storage Scan).",
    "Storage Lookup": (
        "point lookups, by internal row pointer, of the table rows an index scan found, for "
        "the columns the index does not cover; many loops here mean many storage round trips "
        "(an index with INCLUDE columns can remove them)."),
    "B-Tree Lookup": "the point lookup of one table entry by key (under a Storage Lookup).",
}

#: node types that read a whole table, on PostgreSQL (the emulator) and on DSQL
FULL_SCANS = frozenset({"Seq Scan", "Full Scan (btree-table)", "Full Scan"})


def dsql_explanation(node_type: str) -> str | None:
    """The explanation of a DSQL-specific node type, or None for PostgreSQL's own nodes."""
    if node_type in DSQL_NODES:
        return DSQL_NODES[node_type]
    for name, text in DSQL_NODES.items():  # "Full Scan (btree-table)" may lose its suffix
        if node_type.startswith(name.split(" (", 1)[0]) and name.startswith("Full Scan"):
            return text
    return None
