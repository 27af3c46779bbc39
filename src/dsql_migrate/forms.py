"""Statement forms and the one table that says, per profile, which DSQL rejects (DSQL.md §1).

The linter and the local emulator decide from this table and nothing else, so they cannot
disagree: :func:`dsql_migrate.sql.classify.classify` names the :class:`Form` values a parsed
statement uses (once per statement, from the tree both already have), and :func:`rejection`
says whether a profile rejects one of them. A :class:`FormRule` carries both sides' words:

- the emulator answers with ``sqlstate`` and ``message`` (DSQL's error), exactly where the
  statement would have failed;
- the linter reports the finding under ``lint_rule`` (whose docstring documents it) and, when
  that rule's own check has nothing more precise to say, ``fix`` as the suggestion.

A form is rejected by a profile unless the profile allows the form's ``allowed_by`` capability;
a form with no capability is rejected by every profile. Forms every profile accepts are not
listed at all.

Where the verdict comes from (AWS documentation, DSQL.md, or AWS's ``dsql-lint`` as a peer) is in
``source`` when it is not DSQL.md §1; the messages of errors AWS does not document are ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import NamedTuple

from .profiles import Capability, Profile


class Form(str, Enum):
    """A statement form that some profile rejects."""

    # transactions and sessions
    TRUNCATE = "truncate"
    SAVEPOINT = "savepoint"
    RELEASE_SAVEPOINT = "release_savepoint"
    ROLLBACK_TO_SAVEPOINT = "rollback_to_savepoint"
    TWO_PHASE_COMMIT = "two_phase_commit"
    ISOLATION_LEVEL = "isolation_level"
    SET_ROLE = "set_role"
    ADVISORY_LOCK = "advisory_lock"
    LOCK_TABLE = "lock_table"
    LISTEN = "listen"
    UNLISTEN = "unlisten"
    NOTIFY = "notify"
    PREPARE = "prepare"
    DECLARE_CURSOR = "declare_cursor"
    DISCARD = "discard"
    VACUUM = "vacuum"
    COPY_FILE = "copy_file"
    FOR_KEY_SHARE = "for_key_share"
    # objects DSQL does not have
    TRIGGER = "trigger"
    DROP_MISSING_TRIGGER = "drop_missing_trigger"
    EXTENSION = "extension"
    CREATE_LANGUAGE = "create_language"
    CREATE_TYPE = "create_type"
    ALTER_TYPE = "alter_type"
    DROP_TYPE = "drop_type"
    TABLESPACE = "tablespace"
    CREATE_DATABASE = "create_database"
    FOREIGN_DATA = "foreign_data"
    POLICY = "policy"
    ALTER_POLICY = "alter_policy"
    DROP_POLICY = "drop_policy"
    ROW_LEVEL_SECURITY = "row_level_security"
    DO = "do"
    MATERIALIZED_VIEW = "materialized_view"
    DROP_MATERIALIZED_VIEW = "drop_materialized_view"
    CREATE_RULE = "create_rule"
    PROCEDURE = "procedure"
    FUNCTION_LANGUAGE = "function_language"
    STATISTICS = "statistics"
    # tables and columns
    CREATE_TABLE_AS = "create_table_as"
    TEMPORARY = "temporary"
    TEMP_VIEW = "temp_view"
    INHERITS = "inherits"
    PARTITION_BY = "partition_by"
    PARTITION_OF = "partition_of"
    STORAGE_PARAMETERS = "storage_parameters"
    EXCLUSION = "exclusion"
    TOO_MANY_COLUMNS = "too_many_columns"
    SERIAL = "serial"
    ARRAY_COLUMN = "array_column"
    INET_COLUMN = "inet_column"
    JSONB_COLUMN = "jsonb_column"
    WIDE_NUMERIC = "wide_numeric"
    NUMERIC_BOUNDS = "numeric_bounds"
    NUMERIC_KEY = "numeric_key"
    COLLATE = "collate"
    IDENTITY_TYPE = "identity_type"
    IDENTITY_CACHE_MISSING = "identity_cache_missing"
    IDENTITY_CACHE = "identity_cache"
    SEQUENCE_TYPE = "sequence_type"
    SEQUENCE_CACHE_MISSING = "sequence_cache_missing"
    SEQUENCE_CACHE = "sequence_cache"
    FOREIGN_KEY = "foreign_key"
    ADD_FOREIGN_KEY_VALIDATED = "add_foreign_key_validated"
    KEY_COLUMNS = "key_columns"
    # ALTER TABLE
    ADD_COLUMN_INLINE = "add_column_inline"
    DROP_COLUMN = "drop_column"
    COLUMN_DEFAULT = "column_default"
    DROP_NOT_NULL = "drop_not_null"
    DROP_CONSTRAINT = "drop_constraint"
    SET_NOT_NULL = "set_not_null"
    ALTER_COLUMN_TYPE = "alter_column_type"
    ADD_IDENTITY = "add_identity"
    REPLICA_IDENTITY = "replica_identity"
    VALIDATE_SYNC = "validate_sync"
    VALIDATE_ASYNC = "validate_async"
    ALTER_TABLE_ASYNC_OTHER = "alter_table_async_other"
    ADD_PRIMARY_KEY = "add_primary_key"
    PRIMARY_KEY_USING_INDEX = "primary_key_using_index"
    ADD_UNIQUE = "add_unique"
    UNIQUE_USING_INDEX = "unique_using_index"
    ADD_CHECK = "add_check"
    ADD_CHECK_VALIDATED = "add_check_validated"
    # indexes
    INDEX_SYNC = "index_sync"
    INDEX_CONCURRENTLY = "index_concurrently"
    INDEX_USING = "index_using"
    PARTIAL_INDEX = "partial_index"
    EXPRESSION_INDEX = "expression_index"
    INDEX_ORDER = "index_order"
    INDEX_OPCLASS = "index_opclass"


class FormRule(NamedTuple):  # not a dataclass: start-up (see profiles.Limits)
    """What DSQL says about a form, and how the linter reports it.

    ``message`` is a template: ``{construct}`` is ``construct`` or what the classifier found
    (``CREATE EVENT TRIGGER``, ``isolation level serializable``, a type name, a limit).
    """

    construct: str
    lint_rule: str
    fix: str
    allowed_by: Capability | None = None
    sqlstate: str = "0A000"
    message: str = "{construct} is not supported"
    source: str = "DSQL.md §1"

    def error(self, construct: str | None = None) -> str:
        """DSQL's error message for an occurrence (``construct`` as the classifier found it)."""
        return self.message.format(construct=construct or self.construct)


_NO_OBJECTS = "remove it: DSQL has no such objects"
_AWS_UNSUPPORTED = "AWS docs, unsupported PostgreSQL features"
_PEER = "AWS dsql-lint 0.2.22 (a peer, not verified against DSQL)"
_TRIGGERS = "move the trigger's logic into the application"
_RECREATE = "recreate the table"
_NOT_VALID = "add NOT VALID, then ALTER TABLE ASYNC ... VALIDATE CONSTRAINT"

F = Form
C = Capability
#: every form some profile rejects: the single source of the linter's and the emulator's verdicts
FORM_RULES: dict[Form, FormRule] = {
    F.TRUNCATE: FormRule("TRUNCATE", "truncate", "delete in batches of at most 1,000 rows per "
                         "transaction, or drop and recreate the table", source=_AWS_UNSUPPORTED),
    F.SAVEPOINT: FormRule("SAVEPOINT", "unsupported_savepoint",
                          "split the work into separate transactions", source=_AWS_UNSUPPORTED),
    F.RELEASE_SAVEPOINT: FormRule("RELEASE SAVEPOINT", "unsupported_release_savepoint",
                                  "split the work into separate transactions"),
    F.ROLLBACK_TO_SAVEPOINT: FormRule("ROLLBACK TO SAVEPOINT",
                                      "unsupported_rollback_to_savepoint",
                                      "roll back the whole transaction and retry it"),
    F.TWO_PHASE_COMMIT: FormRule("two-phase commit", "unsupported_two_phase_commit",
                                 "commit each transaction on its own"),
    F.ISOLATION_LEVEL: FormRule("isolation level", "transaction_isolation",
                                "use REPEATABLE READ (or leave the level out)"),
    F.SET_ROLE: FormRule("SET ROLE", "unsupported_set_role",
                         "connect as that role instead (IAM token for the role)"),
    F.ADVISORY_LOCK: FormRule("pg_advisory_lock", "advisory_lock",
                              "use a lease row in a lock table instead",
                              message="function {construct} not supported"),
    F.LOCK_TABLE: FormRule("LOCK TABLE", "unsupported_lock_table",
                           "rely on optimistic concurrency: retry on SQLSTATE 40001"),
    F.LISTEN: FormRule("LISTEN", "unsupported_listen", "use a queue outside the database"),
    F.UNLISTEN: FormRule("UNLISTEN", "unsupported_unlisten", "use a queue outside the database"),
    F.NOTIFY: FormRule("NOTIFY", "unsupported_notify", "use a queue outside the database"),
    F.PREPARE: FormRule("PREPARE", "unsupported_prepare",
                        "use your driver's prepared statements (extended protocol)"),
    F.DECLARE_CURSOR: FormRule("DECLARE CURSOR", "unsupported_declare_cursor",
                               "page with keyset pagination (WHERE key > :last)"),
    F.DISCARD: FormRule("DISCARD", "unsupported_discard",
                        "open a new connection for a clean session", source=_PEER),
    F.VACUUM: FormRule("VACUUM", "unsupported_vacuum",
                       "remove it; DSQL manages storage (ANALYZE alone is allowed)",
                       source=_AWS_UNSUPPORTED),
    F.COPY_FILE: FormRule("COPY to or from a server-side file or program",
                          "unsupported_copy_from_file",
                          "use COPY ... FROM STDIN (psql's \\copy) or the application",
                          source=_PEER),
    F.FOR_KEY_SHARE: FormRule("SELECT ... FOR KEY SHARE", "for_key_share",
                              "use FOR UPDATE, or target the current profile",
                              allowed_by=C.FOR_KEY_SHARE,
                              source="AWS docs, supported SQL (FOR { UPDATE | KEY SHARE }); "
                              "release notes 2026-08-25"),
    F.TRIGGER: FormRule("CREATE TRIGGER", "unsupported_create_trigger", _TRIGGERS,
                        source=_AWS_UNSUPPORTED),
    F.DROP_MISSING_TRIGGER: FormRule(
        "trigger", "unsupported_drop_trigger",
        "use DROP TRIGGER IF EXISTS, or remove it: DSQL has no triggers", sqlstate="42704",
        message="{construct} does not exist",
        source=_PEER + ": DROP TRIGGER IF EXISTS is clean, a DROP without IF EXISTS fails"),
    F.EXTENSION: FormRule("CREATE EXTENSION", "unsupported_create_extension",
                          "remove it; DSQL has no extensions", source=_AWS_UNSUPPORTED),
    F.CREATE_LANGUAGE: FormRule("CREATE LANGUAGE", "unsupported_create_language",
                                "write functions in LANGUAGE sql"),
    F.CREATE_TYPE: FormRule("CREATE TYPE", "unsupported_create_type",
                            "use plain columns, CHECK constraints or a lookup table",
                            source=_AWS_UNSUPPORTED),
    F.ALTER_TYPE: FormRule("ALTER TYPE", "unsupported_alter_type", _NO_OBJECTS, source=_PEER),
    F.DROP_TYPE: FormRule("DROP TYPE", "unsupported_drop_type", _NO_OBJECTS, source=_PEER),
    F.TABLESPACE: FormRule("tablespace", "tablespace", "remove the TABLESPACE clause",
                           source=_AWS_UNSUPPORTED),
    F.CREATE_DATABASE: FormRule("CREATE DATABASE", "unsupported_create_database",
                                "use the single database 'postgres', with schemas",
                                source=_AWS_UNSUPPORTED),
    F.FOREIGN_DATA: FormRule("CREATE SERVER", "unsupported_create_server",
                             "load the data through the application or COPY FROM STDIN",
                             source=_AWS_UNSUPPORTED + " (Postgres_FDW)"),
    F.POLICY: FormRule("CREATE POLICY", "unsupported_create_policy",
                       "filter rows in the application or through views"),
    F.ALTER_POLICY: FormRule("ALTER POLICY", "unsupported_alter_policy",
                             "filter rows in the application or through views"),
    F.DROP_POLICY: FormRule("DROP POLICY", "unsupported_drop_policy", _NO_OBJECTS,
                            source=_PEER),
    F.ROW_LEVEL_SECURITY: FormRule("row-level security", "at_unsupported_row_level_security",
                                   "filter rows in the application or through views"),
    F.DO: FormRule("DO (procedural language)", "unsupported_do",
                   "run the statements from the application, or write a LANGUAGE sql function",
                   source=_AWS_UNSUPPORTED + " (PL/pgSQL)"),
    F.MATERIALIZED_VIEW: FormRule("materialized views", "unsupported_materialized_view",
                                  "use a regular view, or a table the application refreshes",
                                  source=_AWS_UNSUPPORTED),
    F.DROP_MATERIALIZED_VIEW: FormRule("DROP MATERIALIZED VIEW",
                                       "unsupported_drop_materialized_view", _NO_OBJECTS,
                                       source=_PEER),
    F.CREATE_RULE: FormRule("CREATE RULE", "unsupported_create_rule",
                            "do the work in the application (rules are triggers' cousins)"),
    F.PROCEDURE: FormRule("CREATE PROCEDURE", "unsupported_create_procedure",
                          "use a LANGUAGE sql function or run the statements from the "
                          "application"),
    F.FUNCTION_LANGUAGE: FormRule("functions in another language than sql",
                                  "unsupported_create_function_non_sql",
                                  "rewrite it as LANGUAGE sql", source=_AWS_UNSUPPORTED),
    F.STATISTICS: FormRule("CREATE STATISTICS", "unsupported_statistics",
                           "remove it, or target the current profile", allowed_by=C.STATISTICS,
                           source="AWS docs, CREATE STATISTICS; release notes 2026-08-27"),
    F.CREATE_TABLE_AS: FormRule("CREATE TABLE AS", "create_table_as",
                                "create the table explicitly, then copy rows with batched "
                                "INSERT INTO ... SELECT", source=_AWS_UNSUPPORTED),
    F.TEMPORARY: FormRule("temporary table", "temp_table",
                          "create a regular table and drop it when finished",
                          source=_AWS_UNSUPPORTED),
    F.TEMP_VIEW: FormRule("temporary view", "unsupported_temp_view",
                          "create a regular view (and drop it when done)"),
    F.INHERITS: FormRule("INHERITS", "inherits", "copy the parent's columns into the table",
                         source=_AWS_UNSUPPORTED),
    F.PARTITION_BY: FormRule("partitioning", "partition_by",
                             "remove the partitioning clause; DSQL distributes data itself",
                             source=_AWS_UNSUPPORTED),
    F.PARTITION_OF: FormRule("partitioning", "unsupported_partition_of",
                             "create an ordinary table, or merge the rows into the parent",
                             source=_AWS_UNSUPPORTED),
    F.STORAGE_PARAMETERS: FormRule("CREATE TABLE ... WITH (storage parameters)",
                                   "unsupported_create_table_with_storage_parameters",
                                   "remove the WITH (...) clause", source=_PEER),
    F.EXCLUSION: FormRule("exclusion constraint", "exclusion_constraint",
                          "enforce the exclusion in the application", source=_AWS_UNSUPPORTED),
    F.TOO_MANY_COLUMNS: FormRule("255", "too_many_columns", "split the table", sqlstate="54011",
                                 message="tables can have at most {construct} columns",
                                 source="DSQL.md §3"),
    F.SERIAL: FormRule("serial", "serial_type",
                       "use BIGINT GENERATED BY DEFAULT AS IDENTITY (CACHE 1)", sqlstate="42704",
                       message='type "{construct}" does not exist'),
    F.ARRAY_COLUMN: FormRule("array column type", "array_type",
                             "use a child table with one row per element, or JSON"),
    F.INET_COLUMN: FormRule("column type inet", "inet_type", "store the address as TEXT"),
    F.JSONB_COLUMN: FormRule("column type jsonb", "jsonb_type", "use JSON, or the current profile",
                             allowed_by=C.JSONB),
    F.WIDE_NUMERIC: FormRule("numeric precision above 38 or scale outside 0..37",
                             "numeric_precision",
                             "use numeric(p, s) with p <= 38 and 0 <= s <= 37, or target the "
                             "current profile", allowed_by=C.WIDE_NUMERIC,
                             source="AWS docs, supported data types; release notes 2026-08-25"),
    F.NUMERIC_BOUNDS: FormRule("NUMERIC precision must be between 1 and 1000", "numeric_bounds",
                               "use a precision of 1 to 1000 and a scale of -1000 to 1000",
                               sqlstate="22023", message="{construct}",
                               source="AWS docs, supported data types; PostgreSQL's own bounds"),
    F.NUMERIC_KEY: FormRule("numeric columns as index keys", "numeric_index_key",
                            "key on another column (numeric has no index support in classic), "
                            "or target the current profile", allowed_by=C.NUMERIC_INDEX_KEY,
                            source="AWS docs, supported data types (index support); release "
                            "notes 2026-08-25"),
    F.COLLATE: FormRule("COLLATE on a column", "collation", "remove the COLLATE clause",
                        source=_AWS_UNSUPPORTED),
    F.IDENTITY_TYPE: FormRule("identity column of a type other than BIGINT", "identity_type",
                              "declare the column BIGINT"),
    F.IDENTITY_CACHE_MISSING: FormRule("identity column requires an explicit CACHE",
                                       "identity_cache_missing", "add (CACHE 1)",
                                       message="{construct}"),
    F.IDENTITY_CACHE: FormRule("identity column CACHE", "identity_cache",
                               "use CACHE 1 or CACHE 65536", message="{construct}"),
    F.SEQUENCE_TYPE: FormRule("sequence of a type other than BIGINT", "sequence_type",
                              "use AS bigint, or leave the type out"),
    F.SEQUENCE_CACHE_MISSING: FormRule("sequence requires an explicit CACHE",
                                       "sequence_cache_missing", "add CACHE 1",
                                       message="{construct}"),
    F.SEQUENCE_CACHE: FormRule("sequence CACHE", "sequence_cache", "use CACHE 1 or CACHE 65536",
                               message="{construct}"),
    F.FOREIGN_KEY: FormRule("FOREIGN KEY constraint", "foreign_key",
                            "remove the foreign key and check references in the application",
                            allowed_by=C.FOREIGN_KEYS),
    F.ADD_FOREIGN_KEY_VALIDATED: FormRule("ADD FOREIGN KEY without NOT VALID",
                                          "foreign_key_not_valid", _NOT_VALID),
    F.KEY_COLUMNS: FormRule("8", "index_key_columns",
                            "key on at most 8 columns; put the others in INCLUDE (...)",
                            sqlstate="54011", message="more than {construct} key columns",
                            source="DSQL.md §3"),
    F.ADD_COLUMN_INLINE: FormRule("ADD COLUMN with constraint or default",
                                  "add_column_constraint",
                                  "add the bare column, backfill it, then add defaults and "
                                  "constraints separately"),
    F.DROP_COLUMN: FormRule("DROP COLUMN", "at_unsupported_drop_column",
                            "recreate the table without the column", allowed_by=C.DROP_COLUMN),
    F.COLUMN_DEFAULT: FormRule("ALTER COLUMN SET/DROP DEFAULT",
                               "at_unsupported_alter_column_default",
                               "supply the value in INSERTs, or recreate the table",
                               allowed_by=C.ALTER_COLUMN_DEFAULT),
    F.DROP_NOT_NULL: FormRule("ALTER COLUMN DROP NOT NULL", "at_unsupported_drop_not_null",
                              "recreate the table with the column nullable",
                              allowed_by=C.DROP_NOT_NULL),
    F.DROP_CONSTRAINT: FormRule("DROP CONSTRAINT", "at_unsupported_drop_constraint",
                                "recreate the table without the constraint",
                                allowed_by=C.DROP_CONSTRAINT),
    F.SET_NOT_NULL: FormRule("ALTER COLUMN SET NOT NULL",
                             "at_unsupported_alter_column_set_not_null",
                             "use CHECK (col IS NOT NULL) NOT VALID (current), or recreate the "
                             "table"),
    F.ALTER_COLUMN_TYPE: FormRule("ALTER COLUMN TYPE", "at_unsupported_alter_column_set_type",
                                  _RECREATE + " with the new type and copy the rows in batches"),
    F.ADD_IDENTITY: FormRule("ALTER COLUMN ADD GENERATED AS IDENTITY",
                             "at_unsupported_alter_column_add_generated",
                             "declare the identity column in CREATE TABLE (recreate the table)"),
    F.REPLICA_IDENTITY: FormRule("REPLICA IDENTITY", "at_unsupported_replica_identity",
                                 "remove it; DSQL has no logical replication settings",
                                 source=_PEER),
    F.VALIDATE_SYNC: FormRule("VALIDATE CONSTRAINT without ASYNC", "validate_constraint_async",
                              "write ALTER TABLE ASYNC t VALIDATE CONSTRAINT c (current)"),
    F.VALIDATE_ASYNC: FormRule("ALTER TABLE ASYNC", "validate_constraint_async",
                               "remove it; the classic profile has no NOT VALID constraints",
                               allowed_by=C.VALIDATE_CONSTRAINT_ASYNC),
    F.ALTER_TABLE_ASYNC_OTHER: FormRule("ALTER TABLE ASYNC supports only VALIDATE CONSTRAINT",
                                        "alter_table_async",
                                        "use ALTER TABLE ASYNC t VALIDATE CONSTRAINT c alone",
                                        message="{construct}"),
    F.ADD_PRIMARY_KEY: FormRule("ADD PRIMARY KEY", "at_unsupported_add_primary_key",
                                "declare the primary key in CREATE TABLE (recreate the table)"),
    F.PRIMARY_KEY_USING_INDEX: FormRule("ADD PRIMARY KEY USING INDEX",
                                        "at_unsupported_primary_key_using_index",
                                        "declare the primary key in CREATE TABLE"),
    F.ADD_UNIQUE: FormRule("ADD CONSTRAINT UNIQUE", "at_unsupported_add_unique",
                           "CREATE UNIQUE INDEX ASYNC, wait, then ADD CONSTRAINT ... UNIQUE "
                           "USING INDEX (current)"),
    F.UNIQUE_USING_INDEX: FormRule("ADD CONSTRAINT UNIQUE USING INDEX",
                                   "at_unsupported_unique_using_index",
                                   "keep the unique index without a constraint",
                                   allowed_by=C.ADD_UNIQUE_USING_INDEX),
    F.ADD_CHECK: FormRule("ADD CONSTRAINT CHECK", "at_unsupported_add_check",
                          "declare the CHECK in CREATE TABLE (recreate the table)",
                          allowed_by=C.CHECK_NOT_VALID),
    F.ADD_CHECK_VALIDATED: FormRule("ADD CONSTRAINT CHECK without NOT VALID", "check_not_valid",
                                    _NOT_VALID),
    F.INDEX_SYNC: FormRule("CREATE INDEX without ASYNC", "index_async",
                           "use CREATE INDEX ASYNC and wait for the job"),
    F.INDEX_CONCURRENTLY: FormRule("CREATE INDEX CONCURRENTLY", "index_concurrently",
                                   "use CREATE INDEX ASYNC"),
    F.INDEX_USING: FormRule("USING btree", "index_using", "remove the USING clause"),
    F.PARTIAL_INDEX: FormRule("partial index", "index_partial",
                              "index the whole table, or target the current profile",
                              allowed_by=C.PARTIAL_INDEX),
    F.EXPRESSION_INDEX: FormRule("expression index", "index_expression",
                                 "index a column that stores the expression's value",
                                 allowed_by=C.EXPRESSION_INDEX),
    F.INDEX_ORDER: FormRule("ASC/DESC on index keys", "index_sort_direction",
                            "remove ASC/DESC", source=_AWS_UNSUPPORTED),
    F.INDEX_OPCLASS: FormRule("operator class on index keys", "index_opclass",
                              "remove the operator class"),
}
del F, C


def rejection(profile: Profile, form: Form) -> FormRule | None:
    """The rule that makes ``profile`` reject ``form``, or None when the profile accepts it."""
    return rejected_forms(profile).get(form)


#: per profile object: (the profile, its rejected forms, the same as a set). Keyed by identity
#: because hashing a Profile (all its limits) on every statement costs more than the lookup
_BY_PROFILE: dict[int, tuple[Profile, Mapping[Form, FormRule], frozenset[Form]]] = {}


def _column(profile: Profile) -> tuple[Profile, Mapping[Form, FormRule], frozenset[Form]]:
    entry = _BY_PROFILE.get(id(profile))
    if entry is None or entry[0] is not profile:
        rejected = {form: r for form, r in FORM_RULES.items()
                    if r.allowed_by is None or not profile.allows(r.allowed_by)}
        entry = (profile, MappingProxyType(rejected), frozenset(rejected))
        if len(_BY_PROFILE) > 64:  # profiles built from configuration come and go
            _BY_PROFILE.clear()
        _BY_PROFILE[id(profile)] = entry
    return entry


def rejected_forms(profile: Profile) -> Mapping[Form, FormRule]:
    """The forms ``profile`` rejects (its column of the table), computed once per profile."""
    return _column(profile)[1]


def rejected_set(profile: Profile) -> frozenset[Form]:
    """The same as a set, for quick membership tests."""
    return _column(profile)[2]


__all__ = ["FORM_RULES", "Form", "FormRule", "rejected_forms", "rejected_set", "rejection"]
