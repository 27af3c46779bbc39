"""Rule families; importing this package registers every rule (one module per family)."""

from __future__ import annotations

from . import (  # noqa: F401  (imported for their registrations)
    alter_table,
    dml,
    indexes,
    limits,
    pg_dump,
    statements,
    syntax,
    tenancy,
    transactions,
    types,
)
