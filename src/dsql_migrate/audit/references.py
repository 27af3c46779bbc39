"""Referential integrity the database does not enforce: orphaned child rows.

Where DSQL has no foreign keys (the classic profile), or a foreign key was added ``NOT VALID``
and never validated, the application keeps references intact (SKILL.md workflow 3: check the
parent before insert, the dependents before delete). This audit checks that it did: for each
relationship the model declares, it reads the child table in keyset pages by its primary key
(``WHERE pk > :last ORDER BY pk LIMIT n``), each page one short read transaction of its own (no
transaction comes near DSQL's 5-minute age limit, DSQL.md §3, however big the table), and counts
the rows whose key is set but names no parent row.

A key with a NULL in any of its columns is not an orphan: a foreign key (``MATCH SIMPLE``, the
default) does not check it either.

When every relationship is clean, :func:`fix_plan` turns the unenforced ones into a Plan that
adds each foreign key ``NOT VALID`` and validates it (an async job), through the planner's own
foreign-key handling (:mod:`dsql_migrate.planner.constraints`); it refuses on a profile without
foreign keys, naming the DSQL rule.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DsqlMigrateError, ExitCode

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy as sa

    from ..catalog import Snapshot, Table
    from ..plan import Plan
    from ..profiles import Profile

DEFAULT_BATCH_ROWS = 1000
DEFAULT_SAMPLES = 10

ENFORCED = "enforced"  # a validated foreign key: nothing to audit
NOT_VALID = "not_valid"  # a foreign key checks new writes only: old rows may be orphans
MISSING = "missing"  # no foreign key at all


class AuditError(DsqlMigrateError):
    """The audit cannot run as asked (a table it needs has no primary key, ...)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Relationship:
    """A reference from ``child (columns)`` to ``parent (parent_columns)``."""

    child: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    source: str  # where it was declared: "model", "--relationship", "file.txt:3"
    child_schema: str | None = None
    parent_schema: str | None = None
    name: str | None = None  # the foreign key's name in the model, if it has one
    ondelete: str | None = None
    onupdate: str | None = None
    #: False for an ORM relationship() with no ForeignKey: the model declares no constraint, so
    #: a plan adding one would leave the database different from the model
    plannable: bool = True

    @property
    def label(self) -> str:
        return (f"{_dotted(self.child_schema, self.child)} ({', '.join(self.columns)}) -> "
                f"{_dotted(self.parent_schema, self.parent)} ({', '.join(self.parent_columns)})")


def _dotted(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema and schema != "public" else name


# -- where relationships come from ---------------------------------------------------------------

def parse_relationship(spec: str, source: str) -> Relationship:
    """``child.col=parent.col``; composite ``child.a,b=parent.x,y``; tables may be
    schema-qualified (``app.orders.customer_id=app.customers.id``)."""
    left, eq, right = spec.partition("=")
    sides = [_side(part.strip()) for part in (left, right)] if eq else [None, None]
    if sides[0] is None or sides[1] is None:
        raise ConfigError(f"{source}: {spec!r} is not a relationship",
                          hint="write child.column=parent.column (several columns: "
                          "child.a,b=parent.x,y; a schema: app.child.a=app.parent.x)")
    (c_schema, child, cols), (p_schema, parent, p_cols) = sides[0], sides[1]
    if len(cols) != len(p_cols):
        raise ConfigError(f"{source}: {spec!r} pairs {len(cols)} child column(s) with "
                          f"{len(p_cols)} parent column(s)",
                          hint="name as many parent columns as child columns, in order")
    return Relationship(child=child, columns=cols, parent=parent, parent_columns=p_cols,
                        source=source, child_schema=c_schema, parent_schema=p_schema)


def _side(text: str) -> tuple[str | None, str, tuple[str, ...]] | None:
    table, dot, columns = text.rpartition(".")
    names = tuple(c.strip() for c in columns.split(","))
    if not dot or not table or not all(names):
        return None
    schema, _, name = table.rpartition(".")
    if not name or "." in schema:
        return None
    return (schema or None), name, names


def relationships_from_file(path: Path) -> list[Relationship]:
    """One relationship per line (the ``--relationship`` syntax); ``#`` starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the relationships file: {exc.strerror}") from None
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        spec = line.split("#", 1)[0].strip()
        if spec:
            found.append(parse_relationship(spec, f"{path}:{number}"))
    return found


def relationships_from_model(target: str) -> list[Relationship]:
    """The relationships of a model target (``package.module:attr``, loaded as ``plan
    --target`` loads it): every ``ForeignKey``, and for a declarative base also every
    many-to-one ``relationship()`` whose join names no foreign key (``foreign()`` annotations)."""
    from ..diff import load_model_target

    desired = load_model_target(target)
    found: dict[tuple[Any, ...], Relationship] = {}
    for table in desired.metadata.tables.values():
        for fk in table.foreign_key_constraints:
            rel = _from_foreign_key(fk)
            found.setdefault(_identity(rel), rel)
    for rel in _from_mappers(target):
        found.setdefault(_identity(rel), rel)
    return list(found.values())


def _identity(rel: Relationship) -> tuple[Any, ...]:
    pairs = tuple(sorted(zip(rel.columns, rel.parent_columns, strict=True)))
    return (rel.child_schema, rel.child, rel.parent_schema, rel.parent, pairs)


def _from_foreign_key(fk: sa.ForeignKeyConstraint) -> Relationship:
    parent = fk.elements[0].column.table
    return Relationship(
        child=fk.table.name, columns=tuple(c.name for c in fk.columns),
        parent=parent.name, parent_columns=tuple(e.column.name for e in fk.elements),
        source="model ForeignKey", child_schema=fk.table.schema, parent_schema=parent.schema,
        name=str(fk.name) if fk.name else None, ondelete=fk.ondelete, onupdate=fk.onupdate)


def _from_mappers(target: str) -> list[Relationship]:
    import sqlalchemy as sa
    from sqlalchemy.orm import RelationshipDirection, configure_mappers

    module_name, _, attr = target.partition(":")
    value: Any = importlib.import_module(module_name)  # already imported by load_model_target
    for part in attr.split("."):
        value = getattr(value, part)
    registry = getattr(value, "registry", None)
    if registry is None or isinstance(value, sa.MetaData):
        return []
    try:
        configure_mappers()
    except Exception as exc:  # a broken relationship() is the model's error, said plainly
        raise ConfigError(f"{target}: the model's relationships do not configure: {exc}") from None
    found = []
    for mapper in registry.mappers:
        for prop in mapper.relationships:
            if prop.direction is not RelationshipDirection.MANYTOONE:
                continue
            pairs = [(local, remote) for local, remote in prop.local_remote_pairs
                     if isinstance(local, sa.Column) and isinstance(remote, sa.Column)]
            if not pairs:
                continue
            child, parent = pairs[0][0].table, pairs[0][1].table
            if not isinstance(child, sa.Table) or not isinstance(parent, sa.Table):
                continue
            found.append(Relationship(
                child=child.name, columns=tuple(p[0].name for p in pairs), parent=parent.name,
                parent_columns=tuple(p[1].name for p in pairs),
                source=f"model relationship {mapper.class_.__name__}.{prop.key}",
                child_schema=child.schema, parent_schema=parent.schema, plannable=False))
    return found


# -- the audit -----------------------------------------------------------------------------------

@dataclass
class RelationshipResult:
    relationship: Relationship
    enforcement: str  # ENFORCED | NOT_VALID | MISSING
    constraint: str | None = None  # the foreign key that exists (NOT_VALID, ENFORCED)
    key: tuple[str, ...] = ()  # the child's primary key, the keyset cursor
    rows_scanned: int = 0
    pages: int = 0
    orphans: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def audited(self) -> bool:
        return self.enforcement != ENFORCED

    def as_dict(self) -> dict[str, Any]:
        rel = self.relationship
        return {"relationship": rel.label, "source": rel.source,
                "child": _dotted(rel.child_schema, rel.child), "columns": list(rel.columns),
                "parent": _dotted(rel.parent_schema, rel.parent),
                "parent_columns": list(rel.parent_columns), "enforcement": self.enforcement,
                "constraint": self.constraint, "key": list(self.key),
                "rows_scanned": self.rows_scanned, "pages": self.pages, "orphans": self.orphans,
                "samples": self.samples}


@dataclass
class ReferencesReport:
    results: list[RelationshipResult]
    batch_rows: int
    profile: str
    notes: list[str] = field(default_factory=list)

    @property
    def orphans(self) -> int:
        return sum(r.orphans for r in self.results)

    @property
    def ok(self) -> bool:
        return self.orphans == 0

    def as_dict(self) -> dict[str, Any]:
        return {"audit": "references", "profile": self.profile, "ok": self.ok,
                "orphans": self.orphans, "batch_rows": self.batch_rows,
                "relationships": [r.as_dict() for r in self.results], "notes": self.notes}


def audit_references(conn: psycopg.Connection[Any], live: Snapshot,
                     relationships: Sequence[Relationship], *, profile: str,
                     batch_rows: int = DEFAULT_BATCH_ROWS, samples: int = DEFAULT_SAMPLES,
                     on_page: Callable[[RelationshipResult], None] | None = None,
                     ) -> ReferencesReport:
    """Check every relationship against ``live``, then scan the unenforced ones for orphans
    through ``conn`` (autocommit: each page is its own short read transaction)."""
    resolved = [_resolve(rel, live) for rel in relationships]  # every error before any scan
    results = []
    for rel, child, state, constraint in resolved:
        result = RelationshipResult(rel, state, constraint, key=_primary_key(child, rel))
        if result.audited:
            _scan(conn, child, live, result, batch_rows, samples, on_page)
        results.append(result)
    notes = [] if relationships else ["no relationship to audit"]
    return ReferencesReport(results, batch_rows, profile, notes)


def _table(live: Snapshot, name: str, schema: str | None, rel: Relationship) -> Table:
    table = live.table(name, schema)
    if table is None:
        raise ConfigError(f"{rel.source}: {rel.label}: the live schema has no table "
                          f"{_dotted(schema, name)}",
                          hint="create it first ('dsql-migrate plan --target ...'), or fix the "
                          "relationship")
    return table


def _resolve(rel: Relationship, live: Snapshot) -> tuple[Relationship, Table, str, str | None]:
    child = _table(live, rel.child, rel.child_schema, rel)
    parent = _table(live, rel.parent, rel.parent_schema, rel)
    for table, columns in ((child, rel.columns), (parent, rel.parent_columns)):
        missing = [c for c in columns if table.column(c) is None]
        if missing:
            raise ConfigError(f"{rel.source}: {rel.label}: table {table.qualified} has no "
                              f"column {', '.join(missing)}",
                              hint=f"its columns: {', '.join(c.name for c in table.columns)}")
    pairs = sorted(zip(rel.columns, rel.parent_columns, strict=True))
    for constraint in child.constraints:
        if constraint.kind == "foreign_key" and constraint.ref_table == parent.qualified and \
                sorted(zip(constraint.columns, constraint.ref_columns, strict=True)) == pairs:
            return rel, child, ENFORCED if constraint.validated else NOT_VALID, constraint.name
    return rel, child, MISSING, None


def _primary_key(child: Table, rel: Relationship) -> tuple[str, ...]:
    pk = child.primary_key
    if pk is None:
        raise AuditError(f"{rel.source}: {rel.label}: table {child.qualified} has no primary "
                         "key, so it cannot be read in keyset pages",
                         hint="DSQL tables always have one; give the table a primary key")
    return pk.columns


def _scan(conn: psycopg.Connection[Any], child: Table, live: Snapshot,
          result: RelationshipResult, batch_rows: int, samples: int,
          on_page: Callable[[RelationshipResult], None] | None) -> None:
    rel = result.relationship
    parent = live.table(rel.parent, rel.parent_schema)
    assert parent is not None
    first, following = _page_queries(child, parent, rel, result.key, batch_rows)
    width = len(result.key)
    cursor: tuple[Any, ...] | None = None
    while True:
        rows = conn.execute(first if cursor is None else following,
                            () if cursor is None else cursor).fetchall()
        if not rows:
            return
        result.pages += 1
        result.rows_scanned += len(rows)
        for row in rows:
            if row[-1]:
                result.orphans += 1
                if len(result.samples) < samples:
                    result.samples.append(_sample(result.key, rel.columns, row, width))
        if on_page is not None:
            on_page(result)
        if len(rows) < batch_rows:
            return
        cursor = tuple(rows[-1][:width])


def _page_queries(child: Table, parent: Table, rel: Relationship, key: Sequence[str],
                  batch_rows: int) -> tuple[Any, Any]:
    """The first page and the pages after a cursor: the child's key, its reference, and
    whether the reference is set and names no parent row."""
    from psycopg import sql

    def ident(alias: str, names: Iterable[str]) -> list[sql.Composable]:
        return [sql.Identifier(alias, n) for n in names]

    keys = sql.SQL(", ").join(ident("c", key))
    refs = sql.SQL(", ").join(ident("c", rel.columns))
    set_ = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(c)
                                 for c in ident("c", rel.columns))
    join = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("p", pc), sql.Identifier("c", cc))
        for cc, pc in zip(rel.columns, rel.parent_columns, strict=True))
    select = sql.SQL(
        "SELECT {keys}, {refs}, ({set} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {join})) "
        "FROM {child} c").format(
        keys=keys, refs=refs, set=set_, join=join,
        parent=sql.Identifier(parent.schema, parent.name),
        child=sql.Identifier(child.schema, child.name))
    tail = sql.SQL(" ORDER BY {keys} LIMIT {n}").format(keys=keys, n=sql.Literal(batch_rows))
    after = sql.SQL(" WHERE ({keys}) > ({params})").format(
        keys=keys, params=sql.SQL(", ").join(sql.Placeholder() for _ in key))
    return select + tail, select + after + tail


def _sample(key: Sequence[str], columns: Sequence[str], row: Sequence[Any],
            width: int) -> dict[str, Any]:
    return {"key": {k: _plain(v) for k, v in zip(key, row[:width], strict=True)},
            "reference": {c: _plain(v) for c, v in zip(columns, row[width:-1], strict=True)}}


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


# -- the plan that makes the database enforce them -----------------------------------------------

def refuse_without_foreign_keys(profile: Profile) -> None:
    """Raise, naming DSQL's rule, when ``profile`` has no foreign keys."""
    from ..forms import Form, rejection

    rule = rejection(profile, Form.FOREIGN_KEY)
    if rule is not None:
        raise ConfigError(
            f"cannot write a plan that adds foreign keys on the {profile.name} profile: "
            f"{rule.error()} ({rule.source}; lint rule {rule.lint_rule})",
            hint=f"{rule.fix}: run the audit without --write-plan, or target the current "
            "profile (--profile current) on a cluster that has foreign keys")


def fix_plan(report: ReferencesReport, live: Snapshot, profile: Profile,
             source: dict[str, Any]) -> tuple[Plan | None, list[str]]:
    """A plan that adds every unenforced relationship's foreign key ``NOT VALID`` and validates
    it (or validates the one left ``NOT VALID``), None when there is nothing to do; and notes
    on the relationships left out of it. Only for a clean report on a profile with foreign
    keys."""
    import sqlalchemy as sa
    from alembic.operations import ops

    from ..ops import ValidateConstraintOp
    from ..planner import plan

    refuse_without_foreign_keys(profile)
    if not report.ok:
        raise AuditError(f"{report.orphans} orphaned row(s): no plan written",
                         hint="fix or delete the orphans, then audit again")
    op_list: list[ops.MigrateOperation] = []
    notes: list[str] = []
    for result in report.results:
        rel = result.relationship
        if result.enforcement == MISSING and not rel.plannable:
            notes.append(f"{rel.label} is not in the plan: the model has a relationship() but "
                         "no ForeignKey for it, and a foreign key the model does not declare "
                         "would differ from it; declare the ForeignKey in the model, or name "
                         "it with --relationship")
            continue
        child = live.table(rel.child, rel.child_schema)
        assert child is not None
        schema = None if child.schema == "public" else child.schema
        if result.enforcement == NOT_VALID:
            assert result.constraint is not None
            op_list.append(ValidateConstraintOp(child.name, result.constraint, schema=schema))
        elif result.enforcement == MISSING:
            op_list.append(_add_foreign_key(rel, live, child))
    if not op_list:
        return None, notes
    return plan(op_list, live, sa.MetaData(), profile, source=source), notes


def _add_foreign_key(rel: Relationship, live: Snapshot, child: Table) -> Any:
    from alembic.operations import ops

    from ..sql.quoting import identifier_bytes

    parent = live.table(rel.parent, rel.parent_schema)
    assert parent is not None
    _require_parent_key(rel, parent)
    name = rel.name or f"{child.name}_{'_'.join(rel.columns)}_fkey"
    if identifier_bytes(name) > 63:
        raise AuditError(f"{rel.source}: {rel.label}: the foreign key's name {name!r} is longer "
                         "than 63 bytes", hint="name the ForeignKey in the model (name=...)")
    kw: dict[str, Any] = {
        "source_schema": None if child.schema == "public" else child.schema,
        "referent_schema": None if parent.schema == "public" else parent.schema}
    if rel.ondelete:
        kw["ondelete"] = rel.ondelete
    if rel.onupdate:
        kw["onupdate"] = rel.onupdate
    return ops.CreateForeignKeyOp(name, child.name, parent.name, list(rel.columns),
                                  list(rel.parent_columns), **kw)


def _require_parent_key(rel: Relationship, parent: Table) -> None:
    """A foreign key references a primary key or a unique constraint on exactly its columns."""
    wanted = set(rel.parent_columns)
    if any(c.kind in ("primary_key", "unique") and set(c.columns) == wanted
           for c in parent.constraints):
        return
    raise AuditError(f"{rel.source}: {rel.label}: {parent.qualified} has no primary key or "
                     f"unique constraint on ({', '.join(rel.parent_columns)}), so no foreign "
                     "key can reference it", hint="reference the parent's key, or add a unique "
                     "constraint on those columns first")


__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_SAMPLES",
    "ENFORCED",
    "MISSING",
    "NOT_VALID",
    "AuditError",
    "ReferencesReport",
    "Relationship",
    "RelationshipResult",
    "audit_references",
    "fix_plan",
    "parse_relationship",
    "refuse_without_foreign_keys",
    "relationships_from_file",
    "relationships_from_model",
]
