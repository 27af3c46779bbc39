"""The ``--writes=cdc`` recreation, step by step (the plan says it in the same words):

copy
    before the first batch, :func:`record_start` records the moment the stream is read from
    (database clock, less a margin for clock skew), once: a resumed run reads from the same
    moment, early enough for every change the copy may have missed.
verify (before the cut-over)
    :func:`prepass`: read every shard from that moment, re-sync the keys of the table that
    changed, then compare counts and checksums per key range and re-copy the ranges that
    differ. A difference left is not a failure: the application is still writing.
swap (the cut-over)
    :func:`cut_over`: keep re-syncing until the backlog of changed keys is small; freeze
    writes (:mod:`.freeze`, recorded before the REVOKE); drain the stream to its tip and
    re-sync; verify **every** key range with writes frozen, re-copying what differs, and refuse
    (unfreezing) if it still differs; rename the table to its backup and the new table into
    place (it has the grants already, so writes go on at once); give back the revoked
    privileges; print the freeze time.

What is relied on, and what is not. DSQL delivers every committed change at least once, in no
particular order, and with some delay. A marker row written after the freeze and seen on the
stream would prove nothing about earlier changes (no order), and "every shard at its tip" only
says what Kinesis has *received*. So the stream is only used to keep the work under the freeze
small; what makes the result exact is the verification of the whole table under the freeze,
which compares the frozen source with the new table range by range and re-copies any range
that differs, whatever the stream delivered or not.

A transaction that wrote the table before the REVOKE (DSQL and PostgreSQL check privileges per
statement) and commits after the verification read its range would escape a verification made
before the renames; so the verification runs **after the first rename** (the table to its
backup name) and before the second, when no write can reach the old table any more:
PostgreSQL's ``ALTER TABLE ... RENAME`` waits for the lock of every transaction that wrote the
table, and on DSQL a transaction that began before a DDL on its table fails at commit
(:data:`DDL_FENCE`).
"""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from ...plan import Plan, Step, StepKind
from .. import postcondition
from ..errors import StepFailed, VerificationFailed
from ..events import Event
from ..options import RunOptions
from ..state import FAILED, RUNNING, StepRow
from ..steps.base import StepContext
from . import freeze as freezing
from . import ranges
from .resync import resync
from .stream import ChangeStream, PollResult, StreamError, TableFilter, check_cluster_stream

CDC = "cdc"
#: Why nothing written before the first rename can land in the old table after it.
#: DSQL ("Understanding DDL in Aurora DSQL", docs.aws.amazon.com/aurora-dsql/latest/userguide/
#: working-with-ddl.html): the catalog is distributed and a schema change is a distributed
#: transaction; a transaction that uses a table while another transaction changes its schema
#: gets a concurrency control violation, "SQL Error [40001]: ERROR: schema has been updated by
#: another transaction, please retry: (OC001)" (the documented case: an ALTER TABLE in one
#: session, an INSERT into the table in another). DSQL's concurrency control is optimistic and
#: checks at commit, so an application transaction that wrote the table before the rename
#: fails at its commit and retries against the name, which is not there (42P01) or is the new
#: table. (Inferred from the documentation, not observed on AWS.) PostgreSQL (the emulator):
#: ALTER TABLE ... RENAME takes an ACCESS EXCLUSIVE lock, granted only once every transaction
#: holding the ROW EXCLUSIVE lock of a write on the table has ended, so its write is in the
#: table before the verification reads it.
DDL_FENCE = "OC001 / ACCESS EXCLUSIVE"
#: rounds of reads of every shard in the drain under the freeze
DRAIN_ROUNDS = 20
#: most seconds the catch-up before the freeze waits for the backlog to become small
CATCH_UP_SECONDS = 600.0
#: seconds between two progress reports of the stream
PROGRESS_EVERY = 2.0


def uses_cdc(plan: Plan) -> bool:
    return any(s.details.get("writes") == CDC for s in plan.steps)


def preflight(plan: Plan, options: RunOptions) -> None:
    """Before anything changes: a plan with a ``--writes=cdc`` recreation needs a readable,
    ACTIVE stream (and on AWS one the cluster delivers to)."""
    if not uses_cdc(plan):
        return
    if not options.cdc_stream:
        from ...errors import ConfigError

        raise ConfigError(
            "this plan recreates a table with --writes=cdc: apply needs the CDC stream",
            hint="pass --cdc-stream ARN (the Kinesis data stream the cluster's CDC stream "
            "delivers to; docs/runner.md shows how to create one)")
    stream = open_stream(options)
    stream.check_active()
    if options.cdc_cluster:
        check_cluster_stream(stream.arn, options.cdc_cluster, stream.region,
                             endpoint=options.cdc_dsql_endpoint,
                             credentials=options.cdc_credentials)


def open_stream(options: RunOptions) -> ChangeStream:
    if not options.cdc_stream:
        raise StreamError("no CDC stream given (--cdc-stream)")
    return ChangeStream(options.cdc_stream, endpoint=options.cdc_endpoint,
                        credentials=options.cdc_credentials)


def record_start(ctx: StepContext, step: Step) -> None:
    """The copy's first act under --writes=cdc."""
    assert step.batch is not None
    started = freezing.record_start(ctx, step.batch.table)
    ctx.emit(Event("cdc.start", f"step {step.id}: reading the CDC stream from "
                   f"{started.isoformat(timespec='seconds')} (before the copy's first batch)",
                   step.id, data={"stream_start": started.isoformat()}))


class _Reader:
    """The stream of one table, read from its recorded start, with progress reports."""

    def __init__(self, ctx: StepContext, verify: Step, step: Step | None = None) -> None:
        assert verify.batch is not None
        self.ctx = ctx
        self.verify = verify
        self.step_id = (step or verify).id
        self.source = verify.batch.table
        self.table = TableFilter.from_details(verify.details)
        record = freezing.read(ctx, self.source)
        if record is None:
            raise StepFailed(f"step {verify.id}: no recorded start of the CDC stream for "
                             f"{self.source}: the copy records it before its first batch",
                             hint="abandon this plan (--abandon-previous), drop the new table "
                             "and plan again")
        self.start: datetime = record.stream_start
        if record.synced_to is not None:
            margin = timedelta(seconds=ctx.options.cdc_start_margin_seconds)
            self.start = max(self.start, record.synced_to - margin)
        self.stream = open_stream(ctx.options)
        self.stream.start(self.start)
        self.resynced = 0
        #: the keys re-synced since the caller last cleared it
        self.since: set[tuple[str, ...]] = set()
        self._reported = 0.0

    def poll(self, rounds: int = 1) -> PollResult:
        result = self.stream.poll(self.table, rounds=rounds)
        if result.unreadable:
            self.ctx.emit(Event("cdc.unreadable", f"{result.unreadable} record(s) of the "
                                "stream could not be read as DSQL's JSON (or lacked the key); "
                                "the verification covers their rows", self.step_id))
        return result

    def apply(self, keys: set[tuple[str, ...]]) -> None:
        self.since.update(keys)
        self.resynced += resync(self.ctx, self.verify, keys)

    def report(self, result: PollResult, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._reported < PROGRESS_EVERY:
            return
        self._reported = now
        self.ctx.emit(Event(
            "cdc.progress", f"step {self.step_id}: stream lag {result.lag_ms} ms, backlog "
            f"{len(result.keys)} changed key(s), {self.resynced:,} re-synced "
            f"({self.stream.shard_count} shard(s))", self.step_id,
            data={"lag_ms": result.lag_ms, "backlog": len(result.keys),
                  "resynced": self.resynced, "shards": self.stream.shard_count}))

    def catch_up(self, threshold: int) -> None:
        """Re-sync until a pass at every shard's tip finds at most ``threshold`` keys (those
        are left to the caller's next pass)."""
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while True:
            began = datetime.now(timezone.utc)
            result = self.poll()
            self.report(result)
            if result.at_tip and len(result.keys) <= threshold:
                self.apply(result.keys)
                # every shard was read to its tip after ``began``: all that arrived before is
                # re-synced now
                freezing.record_synced(self.ctx, self.source, began)
                return
            self.apply(result.keys)
            self.ctx.lock.heartbeat_if_due()
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"step {self.verify.id}: the CDC backlog of {self.source} did not get "
                    f"small within {CATCH_UP_SECONDS:g}s (lag {result.lag_ms} ms, "
                    f"{len(result.keys)} keys per pass)",
                    hint="the application writes faster than the re-sync: run again at a "
                    "quieter time ('dsql-migrate apply' resumes here)")


def _verify_step(ctx: StepContext, step: Step) -> Step:
    vid = step.details.get("verified_by")
    found = next((s for s in ctx.plan.steps if vid is not None and s.id == int(vid)), None)
    if found is None or found.batch is None or found.kind != StepKind.VERIFY:
        raise StepFailed(f"step {step.id}: its per-range verification step is not in the plan")
    return found


def prepass(ctx: StepContext, step: Step) -> tuple[bool, list[dict[str, Any]], str | None]:
    """The verify step of a --writes=cdc recreation: catch up with the stream, then the ranged
    check with repairs. Differences left are reported, not failed (writes go on)."""
    from ..steps.verify import check

    reader = _Reader(ctx, step)
    reader.catch_up(ctx.options.cdc_backlog_keys)
    ok, figures, _ = check(ctx, step)
    if not ok and figures:
        # not a failure: the application is writing; the cut-over verifies with writes frozen
        figures[0]["rows"].insert(0, {"left_to_the_cut_over": "ranges the application "
                                      "changed since; verified again with writes frozen"})
    return True, figures, None


def cut_over(ctx: StepContext, step: Step, before: StepRow, *, resumed: bool) -> None:
    """The swap step of a --writes=cdc recreation (see the module's docstring); the freeze
    ends in the next step, after the second rename (:func:`unfreeze`)."""
    from ..steps.ddl import execute_ddl, run_statements

    source = str(step.details.get("source") or "")
    backup = step.details.get("backup")
    first = postcondition.for_statement(step.sql[0]) if step.sql else None
    verify = _verify_step(ctx, step)
    assert verify.batch is not None
    source = source or verify.batch.table
    if before.statements_done > 0:
        run_statements(ctx, step, before, resumed=resumed)  # renamed and verified
        return
    if resumed and first is not None and ctx.holds(first):
        # renamed before a kill, not verified (the step is recorded done only after the
        # verification): verify the backup now, nothing can write it under its backup name
        renamed = on_backup(verify, source, str(backup or ""))
        _verify_frozen(ctx, step, renamed, ranges.prepare(ctx, renamed), set())
        run_statements(ctx, step, before, resumed=True)  # records the rename: step done
        return
    reader = _Reader(ctx, verify, step)
    reader.catch_up(ctx.options.cdc_backlog_keys)
    # cut the key space (and checksum the new table) now: less work under the freeze
    reader.since.clear()
    prepared = ranges.prepare(ctx, verify)
    # the keys changed while it ran: re-synced, and their ranges checksummed again
    reader.catch_up(ctx.options.cdc_backlog_keys)
    ranges.refresh(ctx, verify, prepared, reader.since)
    reader.since.clear()
    frozen_at = freezing.freeze(ctx, source, str(backup) if backup else None, step=step.id)
    ctx.emit(Event("cdc.frozen", f"step {step.id}: writes on {source} frozen at "
                   f"{frozen_at.isoformat(timespec='milliseconds')} (REVOKE INSERT, UPDATE, "
                   "DELETE; recorded to be given back)", step.id,
                   data={"frozen_at": frozen_at.isoformat(), "resynced": reader.resynced}))
    try:
        _drain(ctx, reader)
        ctx.crash.reach("cdc.before_swap")
        # the first rename: from its commit on, no write reaches the old table (DDL_FENCE).
        # Run here, not recorded yet: the step is done only once the backup is verified, so a
        # run killed in between verifies on resume (above)
        if len(step.sql) != 1 or first is None:
            raise StepFailed(f"step {step.id}: a --writes=cdc swap step is one rename with a "
                             "known postcondition; plan again with --writes=cdc")
        if not (resumed and ctx.holds(first)):
            execute_ddl(ctx, step, step.sql[0], first)
        ctx.crash.reach("cdc.swapped")  # the table is the backup now, the new one not in place
        # the verification of every range, between the renames: what it reads is final. The
        # range checksums of the new table made before the freeze stay valid (only the runner
        # writes it), so this is the only verification inside the freeze
        _verify_frozen(ctx, step, on_backup(verify, source, str(backup or "")), prepared,
                       reader.since)
        run_statements(ctx, step, before, resumed=True)  # records the rename: step done
    except BaseException:
        freezing.restore(ctx, source, step=step.id)
        raise


def unfreeze(ctx: StepContext, step: Step) -> None:
    """After the rename that puts the new table in place (a ``ddl`` step with
    ``details["unfreeze"]``): give the recorded privileges back and print the freeze time.
    Nothing to do when a resumed run's start did it already (:func:`.freeze.recover`)."""
    source = str(step.details["unfreeze"])
    ctx.crash.reach("cdc.after_swap")
    seconds = freezing.restore(ctx, source, step=step.id)
    if seconds is None:
        return
    ctx.emit(Event("cdc.freeze", f"step {step.id}: writes on {source} were frozen for "
                   f"{seconds:.3f} s (from the REVOKE to the new table in place)", step.id,
                   data={"freeze_seconds": seconds}))


def on_backup(verify: Step, source: str, backup: str) -> Step:
    """The verify step's statements reading the source under its backup name (after the first
    rename): the source appears in them only as ``FROM <source>``."""
    if not backup:
        raise StepFailed(f"step {verify.id}: the swap step names no backup table; plan again "
                         "with --writes=cdc")
    pattern = re.compile(r"(\bFROM\s+)" + re.escape(source) + r"(?=\s|\)|$)")

    def moved(statement: str) -> str:
        return pattern.sub(lambda m: m.group(1) + backup, statement)
    details = dict(verify.details)
    for name in ("totals", "repair"):
        if isinstance(details.get(name), list):
            details[name] = [moved(str(s)) for s in details[name]]
    assert verify.batch is not None
    batch = dataclasses.replace(verify.batch, table=backup, bounds=moved(verify.batch.bounds))
    return dataclasses.replace(verify, sql=tuple(moved(s) for s in verify.sql),
                               details=details, batch=batch)


def _drain(ctx: StepContext, reader: _Reader) -> None:
    """Read every shard to its tip once more and re-sync what it names: the changes made
    just before the freeze. Not a proof of completeness (see the module's docstring)."""
    result = reader.poll(rounds=DRAIN_ROUNDS)
    reader.apply(result.keys)
    reader.report(result, force=True)


def _verify_frozen(ctx: StepContext, step: Step, verify: Step, prepared: ranges.Prepared,
                   resynced: set[tuple[str, ...]]) -> None:
    equal, compared, repaired = ranges.compare_all(ctx, verify, prepared, resynced)
    ctx.emit(Event("verify", f"step {step.id}: verification {verify.id} with writes frozen, "
                   "between the renames: "
                   f"{'passed' if equal else 'FAILED'} ({compared} key ranges, {repaired} "
                   "copied again)", step.id,
                   data={"ok": equal, "ranges": compared, "repaired": repaired}))
    if not equal:
        raise VerificationFailed(
            f"step {step.id}: with writes frozen, the new table still differs from the source "
            f"after {ranges.MAX_PASSES} passes of re-copying the differing key ranges; the "
            "table is under its backup name and the new one not in place",
            sql_text=verify.sql[-1],
            hint="compare the tables (the verify step's statements); 'dsql-migrate apply' "
            "verifies again before it puts the new table in place")


def resume_flag(before: StepRow) -> bool:
    return before.status in (RUNNING, FAILED)
