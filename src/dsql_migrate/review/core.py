"""``dsql-migrate review``: what a change's new Alembic revisions will do to the database.

1. the base ref (:mod:`.git`) and its files, exported to a temporary directory;
2. the revisions the change adds (in the working tree, not at the base) or edits (at the base,
   with a different file now: flagged, a database that ran it will not run it again);
3. a fresh local emulator, upgraded to the base's heads with the base's own files;
4. the pending revisions compiled on it (:mod:`.compile`) and, with ``--url``, against the
   target's live schema (read only), whose table sizes give the estimates;
5. per revision: the plan, destructive steps and their approval, lint findings for the SQL of
   ``op.execute``, and what DSQL refused, each located on the revision's lines.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.operations import ops
from alembic.script import Script, ScriptDirectory

from ..alembic.project import RevisionCodeError as ProjectCodeError
from ..alembic.project import alembic_errors
from ..alembic.record import NeedsConnection, RevisionCodeError, where_of
from ..config import Config
from ..connect import redact_url
from ..errors import ConfigError, DsqlMigrateError
from ..lint import LintSettings, Severity, fix_script
from ..local import DEFAULT_DIR, LocalInstance
from ..profiles import Profile
from .compile import Compiled, Pending, compile_pending, upgrade_base
from .git import BaseRef, GitError, export_tree, repo_root, resolve_base
from .model import (
    APPROVE_ANNOTATION,
    CODE_ERROR,
    DEFAULT_SECONDS_PER_BATCH,
    Compilation,
    Finding,
    Level,
    Review,
    RevisionReview,
)

LOCAL = "local emulator at the base"
#: the approval annotation on a line of its own, maybe followed by a reason
APPROVE_LINE = r"^\s*#\s*dsql-migrate:\s*approve-destructive(\s.*)?$"
APPROVE_HINT = (f"approve with --approve-destructive, or with the line '{APPROVE_ANNOTATION}' "
                "in the revision file (reviewed with the change)")


@dataclass(frozen=True)
class Request:
    ini: Path
    base: str | None = None
    url: str | None = None
    profile: str | None = None
    approve_destructive: bool = False
    seconds_per_batch: float = DEFAULT_SECONDS_PER_BATCH
    #: the user's own local target, when --url names it ("local")
    local_dir: Path = DEFAULT_DIR


@dataclass(frozen=True)
class Project:
    """The revisions of one tree (the working tree, or the base's export)."""

    root: Path
    scripts: dict[str, Script]
    heads: tuple[str, ...]


def _load(ini: Path, root: Path) -> Project:
    cfg = AlembicConfig(str(ini))
    try:
        with alembic_errors(cfg):
            directory = ScriptDirectory.from_config(cfg)
            scripts = {s.revision: s for s in directory.walk_revisions()}
            heads = tuple(sorted(directory.get_heads()))
    except ProjectCodeError as exc:  # a revision that does not even import (a SyntaxError)
        raise ProjectCodeError(exc.message, hint=review_hint(exc.hint)) from None
    return Project(root, scripts, heads)


#: the runner's hint for a revision's code error speaks of applied revisions: a review applies
#: nothing, so that part goes
_RUN_AGAIN = re.compile(r" and run the command again \(revisions before it stay applied\)")


def review_hint(hint: str | None) -> str:
    return _RUN_AGAIN.sub(", then review again (nothing was applied)", hint or "")


def _relative(path: str | None, root: Path) -> str:
    if path is None:
        return "?"
    resolved = Path(path).resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else path


def _text(script: Script) -> str:
    return Path(script.path).read_text(encoding="utf-8") if script.path else ""


def _line_of(text: str, pattern: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.search(pattern, line):
            return number
    return None


def run_review(config: Config, request: Request) -> Review:
    ini = request.ini.resolve()
    if not ini.is_file():
        raise ConfigError(f"{request.ini}: no such file",
                          hint="run review in the project's directory, or pass -c alembic.ini")
    root = repo_root(ini.parent)
    base = resolve_base(root, request.base)
    profile = config.profile(request.profile or AlembicConfig(str(ini)).get_main_option(
        "dsql_migrate.profile") or None)
    current = _load(ini, root)
    with tempfile.TemporaryDirectory(prefix="dsql-migrate-review-") as tmp:
        base_root = Path(tmp) / "base"
        export_tree(root, base.commit, base_root)
        base_ini = base_root / ini.relative_to(root)
        base_cwd = _cwd_in(base_root, root)
        with _chdir(base_cwd if base_cwd.is_dir() else base_root):
            based = _load(base_ini, base_root) if _has_project(base_ini) else None
        review = Review(base=base.name, base_commit=base.commit,
                        base_heads=based.heads if based else (), profile=profile.name,
                        approve_flag=request.approve_destructive,
                        seconds_per_batch=request.seconds_per_batch,
                        ini_path=ini.relative_to(root).as_posix())
        _changed(review, current, based, base)
        _check_base_heads(based, current, base)
        if not any(r.status == "new" for r in review.revisions):
            return review
        local_dir = Path(tmp) / "local"
        pending = _on_fresh_emulator(config, request, ini, base_ini if based else None,
                                     local_dir, profile, base_cwd)
    _attach(review, pending, LOCAL, current, profile)
    _pin(review, pending, LOCAL)
    if request.url is not None:
        target = compile_pending(config, ini, url=request.url, local_dir=request.local_dir,
                                 profile=request.profile)
        review.targets.append(redact_url(request.url))
        _attach(review, target, redact_url(request.url), current, profile)
        _pin(review, target, redact_url(request.url))
        _target_heads(review, target)
    for r in review.revisions:
        _destructive(review, r)
    return review


def _check_base_heads(based: Project | None, current: Project, base: BaseRef) -> None:
    """The fresh emulator is upgraded to the base's heads: the work tree must know them."""
    missing = [h for h in (based.heads if based else ()) if h not in current.scripts]
    if not missing:
        return
    s = "s" if len(missing) > 1 else ""
    if base.name.startswith("merge base"):  # an ancestor of HEAD: the change removed them
        raise GitError(
            f"the base ({base.name}) has revision{s} {', '.join(missing)}, which this work "
            "tree does not have: the change removed the latest revision of the base",
            hint="restore it (databases may have run it): put what should change in a new "
            "revision instead")
    raise GitError(
        f"--base {base.name} has revision{s} {', '.join(missing)}, which this work tree does "
        f"not have: the base moved on since this branch left it (or the change removed "
        f"{'them' if s else 'it'})",
        hint=f"compare with where the branch left it: --base $(git merge-base HEAD "
        f"{base.name}), or merge {base.name} into the branch first")


def _pin(review: Review, pending: Pending, target: str) -> None:
    """The upgrade hash of ``pending`` on ``target``: the target's, when there is one, is the
    one a deploy to it can pin."""
    review.upgrade_hash, review.hash_missing = pending.upgrade_hash()
    review.hash_target = target


def _has_project(base_ini: Path) -> bool:
    """Whether the base has the project (the change may introduce it). A relative
    ``script_location`` is read from the current directory (the base's own, see the caller)."""
    if not base_ini.is_file():
        return False
    location = AlembicConfig(str(base_ini)).get_main_option("script_location") or ""
    return bool(location) and (Path(location) / "env.py").is_file()


def _changed(review: Review, current: Project, based: Project | None, base: BaseRef) -> None:
    """The new and edited revisions, in the order ``upgrade`` runs them (oldest first)."""
    old = based.scripts if based is not None else {}
    for revision, script in reversed(list(current.scripts.items())):
        text = _text(script)
        path = _relative(script.path, current.root)
        entry = RevisionReview(
            revision=revision, doc=(script.doc or "").strip(), path=path, status="new",
            approved_in_file=_line_of(text, APPROVE_LINE),
            upgrade_line=_line_of(text, r"^def upgrade\("))
        if revision not in old:
            review.revisions.append(entry)
        elif _text(old[revision]) != text:
            entry.status = "edited"
            entry.findings.append(Finding(
                "edited-applied-revision", Level.WARNING,
                f"revision {revision} exists at the base ({base.short}) and its file changed: "
                "a database that already ran it will not run it again, so the edit reaches "
                "new databases only", path, 1,
                fix="undo the edit and put the change in a new revision "
                "(dsql-migrate revision -m ...)"))
            review.revisions.append(entry)
    for revision in old:
        if revision not in current.scripts:
            review.findings.append(Finding(
                "removed-revision", Level.WARNING,
                f"revision {revision} exists at the base ({base.short}) and is gone: databases "
                "that ran it hold a version this project no longer knows",
                _relative(old[revision].path, based.root if based else current.root)))


def _cwd_in(base_root: Path, root: Path) -> Path:
    """The current directory's place in the base's export (a relative ``script_location`` or
    ``prepend_sys_path`` is read from the current directory)."""
    cwd = Path.cwd().resolve()
    return base_root / cwd.relative_to(root) if cwd.is_relative_to(root) else base_root


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _on_fresh_emulator(config: Config, request: Request, ini: Path, base_ini: Path | None,
                       local_dir: Path, profile: Profile, base_cwd: Path) -> Pending:
    instance = LocalInstance(local_dir, profile=profile.name)
    try:
        url = instance.start()
        if base_ini is not None:
            with _chdir(base_cwd if base_cwd.is_dir() else base_ini.parent):
                try:
                    upgrade_base(config, base_ini, url=url, local_dir=local_dir,
                                 profile=request.profile)
                except DsqlMigrateError as exc:
                    raise DsqlMigrateError(
                        f"the base's revisions could not be run on a fresh local emulator: "
                        f"{exc.message}", hint=exc.hint) from None
        return compile_pending(config, ini, url=url, local_dir=local_dir,
                               profile=request.profile)
    finally:
        instance.destroy()


def _attach(review: Review, pending: Pending, target: str, current: Project,
            profile: Profile) -> None:
    by_revision = {r.revision: r for r in review.revisions}
    lint = LintSettings.build(profile)
    for compiled in pending.revisions:
        entry = by_revision.get(compiled.revision)
        if entry is None:
            continue  # pending on the target but not part of this change (_target_heads)
        compilation = Compilation(target)
        entry.compilations.append(compilation)
        if compiled.stopped_by is not None:
            compilation.not_compiled = (f"not compiled: revision {compiled.stopped_by}, before "
                                        "it, could not be compiled")
            continue
        if compiled.plan is not None:
            compilation.plan = compiled.plan
            for warning in compiled.plan.warnings:
                if _LINT_PROBLEM.search(warning):
                    continue  # a lint warning of op.execute SQL: _lint reports it, with a fix
                entry.findings.append(Finding("plan-warning", Level.WARNING,
                                              f"{target}: {warning}", entry.path,
                                              _located(warning, entry) or entry.upgrade_line))
        if compiled.error is not None:
            compilation.refused = compiled.error.message
            entry.findings.extend(_refusal(compiled.error, entry, target))
        if target == LOCAL:
            entry.findings.extend(_lint(compiled, entry, lint))


_LOCATION = re.compile(r"(?P<file>[\w.-]+\.py):(?P<line>\d+)")
#: a refusal line that only repeats a lint error of op.execute SQL (reported by _lint)
_LINT_PROBLEM = re.compile(r"op\.execute #\d+:\d+:\d+: [a-z_]+: ")


def _located(text: str, entry: RevisionReview) -> int | None:
    name = Path(entry.path).name
    for found in _LOCATION.finditer(text):
        if found["file"] == name:
            return int(found["line"])
    return None


def _refusal(exc: DsqlMigrateError, entry: RevisionReview, target: str) -> list[Finding]:
    rule = "needs-connection" if isinstance(exc, NeedsConnection) else (
        CODE_ERROR if isinstance(exc, (RevisionCodeError, ProjectCodeError)) else "refused")
    hint = review_hint(exc.hint) if rule == CODE_ERROR else exc.hint
    head, *problems = exc.message.split("\n  ")
    kept = [p for p in problems if not _LINT_PROBLEM.search(p)]
    if problems and not kept:
        return []  # every problem is a lint error of op.execute SQL: _lint reports each
    where = f"{target}: " if target != LOCAL else ""
    return [Finding(rule, Level.ERROR, f"{where}{head.rstrip(':')}: {p}" if problems else
                    f"{where}{p}", entry.path, _located(p, entry) or entry.upgrade_line,
                    fix=hint) for p in (kept or [head])]


def _execute_ops(recorded: list[ops.MigrateOperation]) -> Iterator[ops.ExecuteSQLOp]:
    for operation in recorded:
        if isinstance(operation, ops.ExecuteSQLOp):
            yield operation
        elif isinstance(operation, ops.OpContainer):
            yield from _execute_ops(list(operation.ops))


def _sql_of(operation: ops.ExecuteSQLOp) -> str | None:
    text: Any = operation.sqltext
    if isinstance(text, str):
        return text
    if isinstance(text, sa.sql.elements.TextClause) and not text._bindparams:
        return text.text
    return None  # a SQLAlchemy construct: compiled by the plugin, not hand-written SQL


def _lint(compiled: Compiled, entry: RevisionReview, settings: LintSettings) -> list[Finding]:
    found: list[Finding] = []
    for number, operation in enumerate(_execute_ops(compiled.recorded), start=1):
        sql = _sql_of(operation)
        if sql is None:
            continue
        where = where_of(operation)
        line = int(where.rsplit(":", 1)[1]) if where and where.rsplit(":", 1)[-1].isdigit() \
            else entry.upgrade_line
        result = fix_script(sql, settings, path=entry.path)
        for d in result.diagnostics:
            fix = d.suggestion
            if d.fix_result is not None and d.fix_result.status.value != "unfixable" and \
                    result.fixed_sql and result.fixed_sql.strip() != sql.strip():
                fix = (fix + "; " if fix else "") + f"fixed SQL: {result.fixed_sql.strip()}"
            elif d.fix_result is not None and d.fix_result.detail and \
                    d.fix_result.detail != fix:
                fix = (fix + "; " if fix else "") + d.fix_result.detail
            found.append(Finding(
                d.rule, Level.ERROR if d.severity is Severity.ERROR else Level.WARNING,
                f"op.execute #{number} (statement {d.statement_index + 1}, line {d.line} of "
                f"its SQL): {d.message}", entry.path, line, fix=fix))
    return found


def _destructive(review: Review, entry: RevisionReview) -> None:
    steps = entry.destructive_steps()
    if not steps:
        return
    approved = entry.approved(review.approve_flag)
    by = "--approve-destructive" if review.approve_flag else (
        f"line {entry.approved_in_file}" if entry.approved_in_file else None)
    for step in steps:
        entry.findings.append(Finding(
            "destructive", Level.NOTE if approved else Level.ERROR,
            f"step {step.id} is destructive: {step.summary}"
            + (f" (approved by {by})" if approved else " (not approved)"),
            entry.path, entry.approved_in_file if approved and entry.approved_in_file
            # an op.execute step names its line ('file.py:17'): the finding goes there
            else _located(step.summary, entry) or entry.upgrade_line,
            fix=None if approved else APPROVE_HINT))


def _target_heads(review: Review, target: Pending) -> None:
    pending = {c.revision for c in target.revisions}
    applied = [r.revision for r in review.revisions if r.status == "new"
               and r.revision not in pending]
    if applied:
        review.findings.append(Finding(
            "target-not-at-base", Level.WARNING,
            f"the target already has {', '.join(applied)}: the plan shown for "
            f"{'them' if len(applied) > 1 else 'it'} is the local emulator's"))
    if set(target.heads) == set(review.base_heads):
        return
    ours = {r.revision for r in review.revisions}
    others = [c.revision for c in target.revisions if c.revision not in ours]
    review.findings.append(Finding(
        "target-not-at-base", Level.WARNING,
        f"the target is at {', '.join(target.heads) or '<base>'}, not at the base's heads "
        f"({', '.join(review.base_heads) or '<base>'})"
        + (f"; it also has pending revisions not part of this change: {', '.join(others)}"
           if others else ""),
        fix="compare with the target's plan after it is upgraded to the base"))


__all__ = ["LOCAL", "Request", "run_review"]
