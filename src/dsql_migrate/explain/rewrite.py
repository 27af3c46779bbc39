"""Turn the statement a user wants explained into the SELECT whose plan is captured.

The query-plan workflow (seed guide, workflow 8) captures ``EXPLAIN ANALYZE`` only for reads:
``ANALYZE`` *runs* the statement, so a write would change data (or, in a read-only
transaction, fail). An UPDATE or DELETE is rewritten to the SELECT with the same join chain and
WHERE clause, which the optimizer plans with the same shape; INSERT, DDL and procedural code
(DO, CALL, function and procedure definitions) are refused. The rewrite works on pglast's
parse tree, never on the text, so quoting, comments and nested queries survive intact.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from ..errors import DsqlMigrateError, ExitCode

#: statement node types refused as procedural code: they run code, they are not queries
_PROCEDURAL = {
    "DoStmt": "a DO block",
    "CallStmt": "CALL",
    "CreateFunctionStmt": "a function or procedure definition",
    "AlterFunctionStmt": "a function change",
}


class ExplainRefused(DsqlMigrateError):
    """The statement cannot be explained safely: it is not a query, or it does not parse."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Explainable:
    """What is explained: the user's statement and the SELECT that is actually run."""

    original: str
    select: str
    kind: str  # "select" | "update" | "delete"
    note: str | None = None  # what the rewrite changed, for the report

    @property
    def rewritten(self) -> bool:
        return self.kind != "select"


def explainable(sql: str) -> Explainable:
    """The SELECT to capture a plan for; :class:`ExplainRefused` for anything else."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise ExplainRefused("nothing to explain: the statement is empty",
                             hint='give one query, e.g. dsql-migrate explain "SELECT ..."')
    try:
        statements = parse_sql(text)
    except ParseError as exc:
        offset = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        where = _line_col(text, offset) if offset is not None else ""
        raise ExplainRefused(f"the statement does not parse{where}: {exc.args[0]}",
                             hint="fix the SQL; explain takes one PostgreSQL query") from None
    if len(statements) != 1:
        raise ExplainRefused(f"give exactly one statement to explain, not {len(statements)}",
                             hint="explain each query on its own")
    node = statements[0].stmt
    if isinstance(node, ast.ExplainStmt):  # "EXPLAIN ANALYZE SELECT ...": take the query
        node = node.query
    if node is None:
        raise ExplainRefused("nothing to explain: the statement is empty")
    return _explainable(text, node)


def _explainable(text: str, node: ast.Node) -> Explainable:
    name = type(node).__name__
    if isinstance(node, ast.SelectStmt):
        _check_select(node)
        return Explainable(text, text if _is_plain(text) else _render(node), "select")
    if isinstance(node, ast.UpdateStmt):
        return _from_update(text, node)
    if isinstance(node, ast.DeleteStmt):
        return _from_delete(text, node)
    if isinstance(node, ast.InsertStmt):
        raise ExplainRefused(
            "INSERT is not explained: EXPLAIN ANALYZE would run it, and an INSERT has no "
            "equivalent SELECT with the same plan",
            hint="explain the SELECT part of an INSERT ... SELECT on its own")
    if name in _PROCEDURAL:
        raise ExplainRefused(
            f"{_PROCEDURAL[name]} is procedural code, not a query: it cannot be explained",
            hint="explain the queries the code runs, one by one")
    raise ExplainRefused(
        f"{_statement_name(name)} is not a query: explain takes a SELECT, UPDATE or DELETE",
        hint="DDL and other statements have no query plan; 'dsql-migrate plan' shows what a "
        "schema change does")


def _is_plain(text: str) -> bool:
    """A SELECT is run as the user wrote it (the guide: 'verbatim'), unless it came wrapped
    in EXPLAIN, which is stripped by re-rendering the inner query."""
    return not text.lstrip().lower().startswith("explain")


def _check_select(node: ast.SelectStmt) -> None:
    if node.intoClause is not None:
        raise ExplainRefused("SELECT ... INTO creates a table: it is DDL, not a query",
                             hint="explain the SELECT without INTO")
    if node.lockingClause:
        raise ExplainRefused(
            "SELECT ... FOR UPDATE/SHARE locks rows: the plan is captured in a read-only "
            "transaction, where row locks are refused",
            hint="explain the query without the locking clause: the plan is the same")
    _check_ctes(node.withClause)


def _check_ctes(with_clause: ast.WithClause | None) -> None:
    for cte in (with_clause.ctes or ()) if with_clause is not None else ():
        query = cte.ctequery
        if isinstance(query, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)):
            raise ExplainRefused(
                f"the WITH query {cte.ctename} writes ({type(query).__name__[:-4].upper()}): "
                "EXPLAIN ANALYZE would run it",
                hint="explain the data-modifying part on its own (UPDATE and DELETE are "
                "rewritten to a SELECT)")
        if isinstance(query, ast.SelectStmt):
            _check_select(query)


def _from_update(text: str, node: ast.UpdateStmt) -> Explainable:
    _check_ctes(node.withClause)
    _check_current_of(node.whereClause)
    targets: list[ast.ResTarget] = []
    for target in node.targetList or ():
        value = target.val
        if isinstance(value, ast.MultiAssignRef):  # SET (a, b) = (...): the source once
            if value.colno == 1:
                targets.append(ast.ResTarget(val=value.source))
            continue
        targets.append(ast.ResTarget(name=target.name, val=value))
    select = ast.SelectStmt(
        targetList=tuple(targets),
        fromClause=(node.relation, *(node.fromClause or ())),
        whereClause=node.whereClause,
        withClause=node.withClause,
    )
    return Explainable(text, _render(select), "update",
                       note="UPDATE rewritten to the SELECT of its new values over the same "
                       "tables and WHERE clause (UPDATE ... FROM joins kept)")


def _from_delete(text: str, node: ast.DeleteStmt) -> Explainable:
    _check_ctes(node.withClause)
    _check_current_of(node.whereClause)
    relation = node.relation
    assert relation is not None  # the grammar requires DELETE FROM <table>
    name = relation.alias.aliasname if relation.alias is not None else relation.relname
    star = ast.ColumnRef(fields=(ast.String(sval=name), ast.A_Star()))
    select = ast.SelectStmt(
        targetList=(ast.ResTarget(val=star),),
        fromClause=(relation, *(node.usingClause or ())),
        whereClause=node.whereClause,
        withClause=node.withClause,
    )
    return Explainable(text, _render(select), "delete",
                       note="DELETE rewritten to the SELECT of the rows it deletes over the "
                       "same tables and WHERE clause (DELETE ... USING joins kept)")


def _check_current_of(where: ast.Node | None) -> None:
    if isinstance(where, ast.CurrentOfExpr):
        raise ExplainRefused("WHERE CURRENT OF needs a cursor: it has no SELECT equivalent")


def _render(node: ast.Node) -> str:
    return str(RawStream()(node))


def _statement_name(node_type: str) -> str:
    """``CreateStmt`` -> ``CREATE`` ... a readable name for the refusal message."""
    words = {"CreateStmt": "CREATE TABLE", "IndexStmt": "CREATE INDEX", "AlterTableStmt":
             "ALTER TABLE", "DropStmt": "DROP", "TruncateStmt": "TRUNCATE", "MergeStmt":
             "MERGE", "CopyStmt": "COPY", "VariableSetStmt": "SET", "TransactionStmt":
             "a transaction statement", "GrantStmt": "GRANT", "ViewStmt": "CREATE VIEW"}
    return words.get(node_type, f"this statement ({node_type.removesuffix('Stmt')})")


def _line_col(text: str, offset: int) -> str:
    before = text[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return f" at line {line}, column {column}"
