"""Statement classes as DSQL counts them for its transaction rules (DSQL.md §2).

A DSQL transaction holds at most one DDL statement and never mixes DDL with DML. For that
count, every statement that changes the catalog is DDL (``CREATE``, ``ALTER``, ``DROP``,
``COMMENT ON``, ``GRANT``/``REVOKE``, ...); every statement that reads or writes rows is DML
(``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE``, ``MERGE``, ``COPY``, ``TRUNCATE``); ``BEGIN``,
``COMMIT``, ``ROLLBACK`` and savepoints are transaction control; the rest (``SET``, ``SHOW``,
``EXPLAIN``, ``CALL``, ``VACUUM``, ...) is *other* and counts as neither.
"""

from __future__ import annotations

from enum import Enum


class StatementKind(str, Enum):
    DDL = "ddl"
    DML = "dml"
    TRANSACTION = "transaction"
    OTHER = "other"
    UNKNOWN = "unknown"  # the statement did not parse


_DML = frozenset(
    {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CopyStmt",
     "TruncateStmt"}
)
_DDL_EXTRA = frozenset(
    {"IndexStmt", "ViewStmt", "RenameStmt", "CommentStmt", "GrantStmt", "GrantRoleStmt",
     "DefineStmt", "CompositeTypeStmt", "RuleStmt", "SecLabelStmt", "ReassignOwnedStmt",
     "RefreshMatViewStmt", "ReindexStmt", "ClusterStmt", "ImportForeignSchemaStmt",
     "AwsIamStmt"}
)
_DDL_PREFIXES = ("Create", "Alter", "Drop")


def kind_of(node_type: str | None) -> StatementKind:
    """The class of a statement given its pglast node type (``"CreateStmt"``, ...)."""
    if node_type is None:
        return StatementKind.UNKNOWN
    if node_type == "TransactionStmt":
        return StatementKind.TRANSACTION
    if node_type in _DML:
        return StatementKind.DML
    if node_type in _DDL_EXTRA or node_type.startswith(_DDL_PREFIXES):
        return StatementKind.DDL
    return StatementKind.OTHER


__all__ = ["StatementKind", "kind_of"]
