"""Capability profiles: what a DSQL cluster accepts, as data (DSQL.md §1 and §3).

DSQL relaxed many restrictions during 2026, so the rules are dated *profiles* rather than
``if`` statements scattered over the code. The linter, the planner and the local emulator all
ask a :class:`Profile` ``allows(Capability.X)`` and read its :class:`Limits`.

Which statement *forms* each profile accepts or rejects, with DSQL's error and the lint rule that
reports it, is one table beside this module (:mod:`dsql_migrate.forms`): the linter and the local
emulator both decide from it, so they cannot disagree.

Limits are defaults that AWS may change: every one can be overridden from configuration with
:meth:`Profile.with_limits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, NamedTuple

from .errors import ConfigError


class Capability(str, Enum):
    """Statement forms whose acceptance differs between profiles (DSQL.md §1).

    Forms rejected or accepted by *every* profile are not capabilities: they are fixed rules of
    the linter and the emulator.
    """

    EXPRESSION_INDEX = "expression_index"
    PARTIAL_INDEX = "partial_index"
    DROP_COLUMN = "drop_column"
    ALTER_COLUMN_DEFAULT = "alter_column_default"  # SET DEFAULT / DROP DEFAULT
    DROP_NOT_NULL = "drop_not_null"
    ADD_UNIQUE_USING_INDEX = "add_unique_using_index"
    CHECK_NOT_VALID = "check_not_valid"  # ADD CONSTRAINT CHECK ... NOT VALID
    FOREIGN_KEYS = "foreign_keys"  # in CREATE TABLE, or ADD ... NOT VALID
    VALIDATE_CONSTRAINT_ASYNC = "validate_constraint_async"
    DROP_CONSTRAINT = "drop_constraint"
    JSONB = "jsonb"
    STATISTICS = "statistics"  # CREATE/ALTER/DROP STATISTICS (2026-08-27)
    FOR_KEY_SHARE = "for_key_share"  # SELECT ... FOR KEY SHARE (2026-08-25)
    WIDE_NUMERIC = "wide_numeric"  # numeric precision up to 1000, scale -1000..1000 (2026-08-25)
    NUMERIC_INDEX_KEY = "numeric_index_key"  # numeric columns as index keys (2026-08-25)


#: rows of the runner's own state written with each batch (the lane's cursor, the audit row,
#: with room to spare): a batch holds at most the profile's row limit minus these
STATE_ROWS_PER_BATCH = 5


# Limits and Profile are NamedTuples, not dataclasses: importing dataclasses (and the inspect
# module it needs) costs more than linting a one-statement file (issue 18: start-up).
class Limits(NamedTuple):
    """Numeric limits of a cluster (DSQL.md §3). Units are in the field names."""

    rows_per_transaction: int = 3000
    bytes_per_transaction: int = 10 * 1024 * 1024
    transaction_seconds: int = 300
    connection_seconds: int = 3600
    token_seconds: int = 900
    connections_per_cluster: int = 10_000
    indexes_per_table: int = 24
    key_columns_per_index: int = 8
    columns_per_table: int = 255
    identifier_bytes: int = 63
    tables_per_database: int = 1000
    schemas: int = 10
    #: valid identity/sequence CACHE values are exactly 1 or at least this
    min_large_cache: int = 65536


class Profile(NamedTuple):
    """A named set of capabilities and limits."""

    name: str
    description: str
    capabilities: frozenset[Capability]
    limits: Limits = Limits()

    def allows(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def with_limits(self, overrides: Mapping[str, Any]) -> Profile:
        """A copy with some limits replaced, e.g. from the ``[limits]`` table of the config."""
        known = set(Limits._fields)
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"unknown limit(s) in configuration: {', '.join(unknown)}",
                hint=f"known limits: {', '.join(sorted(known))}",
            )
        for key, value in overrides.items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"limit {key!r} must be a positive integer, got {value!r}")
        return self._replace(limits=self.limits._replace(**overrides))


CLASSIC = Profile(
    name="classic",
    description="DSQL as of about 2026-05, what most guides still describe",
    capabilities=frozenset(),
)

CURRENT = Profile(
    name="current",
    description="DSQL as of about 2026-09 and later",
    capabilities=frozenset(Capability),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (CURRENT, CLASSIC)}
DEFAULT_PROFILE = CURRENT.name


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or a :class:`ConfigError` listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown profile {name!r}", hint=f"use one of: {', '.join(PROFILES)}"
        ) from None
