"""Column types: what DSQL stores as PostgreSQL does, and what a dump's other types become.

DSQL supports a subset of PostgreSQL's types (AWS docs, supported data types). A type outside
it either has a documented replacement (:data:`REPLACEMENTS`) or is flagged for a person to
decide (an extension's ``vector``, ``geometry``, ``hstore``; ``money``, ``xml``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

#: type names (pglast's last name part) DSQL stores as PostgreSQL does
SUPPORTED = frozenset({
    "int2", "int4", "int8", "smallint", "integer", "bigint", "int", "float4", "float8", "real",
    "numeric", "decimal", "bool", "boolean", "text", "varchar", "bpchar", "char", "character",
    "date", "time", "timetz", "timestamp", "timestamptz", "interval", "uuid", "json", "jsonb",
    "bytea", "float", "double precision",
})

SERIALS = {"serial": "int4", "serial4": "int4", "bigserial": "int8", "serial8": "int8",
           "smallserial": "int2", "serial2": "int2"}


@dataclass(frozen=True)
class Replacement:
    """A type DSQL lacks and the one the converter uses instead, with what changes."""

    target: str
    message: str
    rule: str


REPLACEMENTS: dict[str, Replacement] = {
    name: Replacement("text", f"column type {name} is not supported by DSQL (DSQL.md §1): "
                      "stored as text in PostgreSQL's text form; cast it back "
                      f"(col::{name}) where the application needs its operators", "inet_type")
    for name in ("inet", "cidr", "macaddr", "macaddr8")
} | {
    "citext": Replacement("text", "citext comes from an extension DSQL lacks: now text, so "
                          "comparisons and UNIQUE are case-sensitive; compare lower(col) in "
                          "queries (and index lower(col) on the current profile)",
                          "unsupported_create_extension"),
}

#: why a type DSQL lacks has no automatic replacement, by name (the default covers the rest)
UNKNOWN_WHY: dict[str, str] = {
    "vector": "pgvector's type (no extensions on DSQL): store embeddings as bytea or json, or "
              "in a vector store",
    "geometry": "PostGIS's type (no extensions on DSQL): store WKB as bytea or GeoJSON as json",
    "geography": "PostGIS's type (no extensions on DSQL): store WKB as bytea or GeoJSON as json",
    "hstore": "hstore's type (no extensions on DSQL): use json/jsonb",
    "money": "money is not supported by DSQL: use numeric(19, 2) and convert the data "
             "(COPY writes money with a currency symbol)",
    "tsvector": "full-text types are not supported by DSQL: search in the application or a "
                "search service",
    "xml": "xml is not supported by DSQL: use text",
}
