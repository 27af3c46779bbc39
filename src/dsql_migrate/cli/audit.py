"""``dsql-migrate audit``: check the live data and schema against what DSQL cannot enforce."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ..connect import connect, redact_url, resolve_target
from ..errors import ConfigError, ExitCode
from ..local import DEFAULT_DIR
from ._common import AppContext, note
from ._plain import write_file

log = logging.getLogger(__name__)

_URL_HELP = "Target URL (default: $DSQL_MIGRATE_URL, config, local emulator)."
_FORMATS = ("markdown", "json")


@click.group()
def audit() -> None:
    """Check the live database for orphaned references and tenant isolation (docs/audit.md).

    Exit codes: 0 clean, 1 findings (orphaned rows, tenancy findings), 2 usage.
    """


@audit.command()
@click.option("--url", help=_URL_HELP)
@click.option("--target", "target_spec", metavar="T",
              help="Model whose ForeignKeys and relationship()s to audit: package.module:attr "
              "(a MetaData or declarative base, as plan --target).")
@click.option("--relationship", "specs", multiple=True, metavar="CHILD.COL=PARENT.COL",
              help="A relationship to audit, e.g. orders.customer_id=customers.id (composite: "
              "t.a,b=p.x,y). Repeatable.")
@click.option("--relationships-file", "spec_file",
              type=click.Path(dir_okay=False, path_type=Path),
              help="File with one CHILD.COL=PARENT.COL per line (# comments).")
@click.option("--profile", help="Capability profile: current or classic (default: config).")
@click.option("--batch-rows", type=click.IntRange(min=1, max=10_000), default=1000,
              show_default=True, help="Child rows read per query (one short read transaction "
              "each).")
@click.option("--samples", type=click.IntRange(min=0), default=10, show_default=True,
              help="Orphaned keys shown per relationship.")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="markdown",
              show_default=True, help="Report format.")
@click.option("--write-plan", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="When no orphan is found: write a plan (JSON) that adds the foreign keys "
              "NOT VALID and validates them (current profile); apply it with "
              "'dsql-migrate apply FILE'.")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
              help="State directory of the local emulator.")
@click.pass_obj
def references(app: AppContext, *, url: str | None, target_spec: str | None,
               specs: tuple[str, ...], spec_file: Path | None, profile: str | None,
               batch_rows: int, samples: int, fmt: str, write_plan: Path | None,
               local_dir: Path) -> None:
    """Find child rows whose reference names no parent, where no valid foreign key prevents it."""
    from ..audit.references import (
        Relationship,
        RelationshipResult,
        audit_references,
        fix_plan,
        parse_relationship,
        refuse_without_foreign_keys,
        relationships_from_file,
        relationships_from_model,
    )
    from ..audit.report import render
    from ..catalog import snapshot
    from ..plan import render as render_plan

    chosen = app.config.profile(profile)
    if write_plan is not None:
        refuse_without_foreign_keys(chosen)  # before reading anything
    if not (target_spec or specs or spec_file):
        raise ConfigError("no relationship to audit",
                          hint="give --target package.module:attr, --relationship "
                          "CHILD.COL=PARENT.COL or --relationships-file FILE")
    rels: list[Relationship] = []
    if target_spec:
        rels += relationships_from_model(target_spec)
    rels += [parse_relationship(spec, "--relationship") for spec in specs]
    if spec_file is not None:
        rels += relationships_from_file(spec_file)

    def progress(result: RelationshipResult) -> None:
        log.info("%s: %d rows read in %d pages, %d orphans", result.relationship.label,
                 result.rows_scanned, result.pages, result.orphans)

    target = resolve_target(url, app.config, local_dir=local_dir)
    with connect(target, autocommit=True, on_start=note) as conn:
        live = snapshot(conn)
        report = audit_references(conn, live, rels, profile=chosen.name, batch_rows=batch_rows,
                                  samples=samples, on_page=progress)
    click.echo(render(report, fmt), nl=False)
    if write_plan is not None:
        if not report.ok:
            note(f"no plan written: {report.orphans} orphaned row(s); fix them and audit again")
        else:
            planned, left_out = fix_plan(report, live, chosen, source={
                "audit": "references", "url": redact_url(target.display)})
            for line in left_out:
                note(line)
            if planned is None:
                note("no plan written: nothing to add or validate")
            else:
                write_file(write_plan, render_plan(planned, "json"))
                note(f"plan written to {write_plan} ({planned.hash}): "
                     f"dsql-migrate apply {write_plan}")
    if not report.ok:
        click.get_current_context().exit(int(ExitCode.FAILED))


@audit.command()
@click.option("--url", help=_URL_HELP)
@click.option("--column", help="The tenant column (default: [lint] tenant_column, else "
              "tenant_id).")
@click.option("--schema", "schemas", multiple=True, metavar="S",
              help="Audit only this schema. Repeatable (default: every user schema).")
@click.option("--exclude", "excludes", multiple=True, metavar="PATTERN",
              help="Skip tables matching PATTERN (table or schema.table, * wildcards). "
              "Repeatable; alembic_version is always skipped.")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="markdown",
              show_default=True, help="Report format.")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
              help="State directory of the local emulator.")
@click.pass_obj
def tenancy(app: AppContext, *, url: str | None, column: str | None, schemas: tuple[str, ...],
            excludes: tuple[str, ...], fmt: str, local_dir: Path) -> None:
    """Check that every table has the tenant column and every key leads with it."""
    from ..audit.report import render
    from ..audit.tenancy import DEFAULT_COLUMN, DEFAULT_EXCLUDE, audit_tenancy
    from ..catalog import snapshot

    if column is None:
        column = str(app.config.section("lint").get("tenant_column", DEFAULT_COLUMN))
    if not column:
        raise ConfigError("--column must not be empty")
    target = resolve_target(url, app.config, local_dir=local_dir)
    with connect(target, autocommit=True, on_start=note) as conn:
        live = snapshot(conn)
    unknown = [s for s in schemas if s not in live.schemas]
    if unknown:
        raise ConfigError(f"--schema: no schema {', '.join(unknown)} in the live database",
                          hint=f"its schemas: {', '.join(live.schemas) or '(none)'}")
    report = audit_tenancy(live, column, schemas=schemas, exclude=DEFAULT_EXCLUDE + excludes)
    click.echo(render(report, fmt), nl=False)
    if not report.ok:
        click.get_current_context().exit(int(ExitCode.FAILED))
