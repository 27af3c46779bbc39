"""The ``--writes=cdc`` recreation, step by step (the plan says it in the same words):

copy
    before the first batch, :func:`record_start` records the moment the copy began (database
    clock), once: a resumed run reads the stream from the same place (a margin before it),
    early enough for every change the copy may have missed; changes committed before it are
    in the copy and skipped.
verify (before the cut-over)
    :func:`prepass`: read every shard from that moment, re-sync the keys of the table that
    changed, then compare counts and checksums per key range and re-copy the ranges that
    differ. A difference left is not a failure: the application is still writing.
swap (the cut-over)
    :func:`cut_over`: keep re-syncing until the stream has delivered a marker written then
    and the backlog of changed keys is small; freeze writes (:mod:`.freeze`, recorded before
    the REVOKE); drain the stream until a marker written under the freeze arrives, and
    re-sync; verify **every** key range with writes frozen, re-copying what differs, and refuse
    (unfreezing) if it still differs; rename the table to its backup and the new table into
    place (it has the grants already, so writes go on at once); give back the revoked
    privileges; print the freeze time.

What is relied on, and what is not. DSQL delivers every committed change at least once, in no
particular order, and with some delay; "every shard at its tip" only says what Kinesis has
*received*. The markers (:mod:`.marker`) say roughly how far DSQL has delivered, not that every
earlier change arrived. So the stream is only used to keep the work under the freeze small;
what makes the result exact is the verification of the whole table under the freeze, which
compares the frozen source with the new table range by range and re-copies any range that
differs, whatever the stream delivered or not.

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
from . import marker, ranges
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
#: most seconds the drain under the freeze waits for its marker (then the verification copies
#: what the stream has not brought)
DRAIN_MARKER_SECONDS = 2.0
#: most seconds the catch-up waits for its marker at the stream's tip before it says so and
#: goes on with the backlog alone
MARKER_SECONDS = 60.0
#: seconds between a change's commit time (``source.ts_ns``) and the database clock the copy's
#: start was read from that are allowed for: changes committed this long before the copy
#: began are still re-synced
COMMIT_CLOCK_SKEW = 1.0
#: pause between two reads at the stream's tip (a shard is read at most 5 times a second
#: anyway: :data:`.stream.MIN_READ_SECONDS`)
IDLE_POLL_SECONDS = 0.05
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
    began = freezing.record_start(ctx, step.batch.table)
    start = began - timedelta(seconds=ctx.options.cdc_start_margin_seconds)
    ctx.emit(Event("cdc.start", f"step {step.id}: reading the CDC stream from "
                   f"{start.isoformat(timespec='seconds')} (the copy began at "
                   f"{began.isoformat(timespec='seconds')}, less "
                   f"{ctx.options.cdc_start_margin_seconds:g} s for clock skew)",
                   step.id, data={"stream_start": start.isoformat(),
                                  "copy_began": began.isoformat()}))


class _Reader:
    """The stream of one table, read from its recorded start, with progress reports."""

    def __init__(self, ctx: StepContext, verify: Step, step: Step | None = None) -> None:
        assert verify.batch is not None
        self.ctx = ctx
        self.verify = verify
        self.step_id = (step or verify).id
        self.source = verify.batch.table
        record = freezing.read(ctx, self.source)
        if record is None:
            raise StepFailed(f"step {verify.id}: no recorded start of the CDC stream for "
                             f"{self.source}: the copy records it before its first batch",
                             hint="abandon this plan (--abandon-previous), drop the new table "
                             "and plan again")
        # Kinesis's AT_TIMESTAMP is its own arrival clock: read from a margin before the copy
        # began (or before where a previous run had re-synced to)
        margin = timedelta(seconds=ctx.options.cdc_start_margin_seconds)
        self.start: datetime = record.stream_start - margin
        if record.synced_to is not None:
            self.start = max(self.start, record.synced_to - margin)
        # a change committed before the copy began is in the copy (each batch reads the table
        # later): skipped, however late the stream delivers it (a bulk load just before the
        # migration would otherwise be re-synced whole)
        self.table = TableFilter.from_details(verify.details).with_marker(
            ctx.store.schema, marker.TABLE,
            committed_after=record.stream_start - timedelta(seconds=COMMIT_CLOCK_SKEW))
        marker.ensure(ctx)  # once per reader, not per marker (one is written under the freeze)
        self.stream = open_stream(ctx.options)
        self.stream.start(self.start)
        self.resynced = 0
        #: seconds from writing a marker to reading it back, in the last catch-up; None when
        #: a marker did not come back (then the drain under the freeze does not wait for one)
        self.marker_seconds: float | None = None
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
        """Re-sync until the stream has delivered a marker written now (:mod:`.marker`) and a
        pass at every shard's tip finds at most ``threshold`` keys (those are left to the
        caller's next pass)."""
        deadline = time.monotonic() + CATCH_UP_SECONDS
        wanted = marker.write(self.ctx, self.source)
        written = time.monotonic()
        # the marker was seen in an earlier pass: this pass read every shard after it had
        # arrived, so whatever arrived before it has been read
        seen = seen_before = False
        while True:
            began = datetime.now(timezone.utc)
            result = self.poll()
            seen_before, seen = seen, seen or wanted in result.markers
            if seen and not seen_before:
                self.marker_seconds = time.monotonic() - written
            self.report(result)
            if not seen and result.at_tip and time.monotonic() - written > MARKER_SECONDS:
                self._marker_missing(MARKER_SECONDS)
                self.marker_seconds = None
                seen = True  # said once; the backlog alone decides from here
            if result.at_tip and seen_before and len(result.keys) <= threshold:
                self.apply(result.keys)
                # every shard was read to its tip after ``began``: all that arrived before is
                # re-synced now
                freezing.record_synced(self.ctx, self.source, began)
                return
            self.apply(result.keys)
            self.ctx.lock.heartbeat_if_due()
            if result.at_tip and not seen and not result.keys:
                time.sleep(IDLE_POLL_SECONDS)  # at the tip, waiting for the marker
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"step {self.verify.id}: the CDC backlog of {self.source} did not get "
                    f"small within {CATCH_UP_SECONDS:g}s (lag {result.lag_ms} ms, "
                    f"{len(result.keys)} keys per pass)",
                    hint="either the application writes faster than the re-sync or the "
                    "stream never reached its tip (see the stream lag in the progress): run "
                    "again at a quieter time ('dsql-migrate apply' resumes here)")

    def drain(self) -> None:
        """Under the freeze: read until a marker written now arrives and every shard is at its
        tip, re-syncing what the stream names: the changes made just before the freeze. Waits
        at most twice the marker's round trip in the catch-up (at least 0.5 s, at most
        :data:`DRAIN_MARKER_SECONDS`); when the catch-up's marker never came back, reads every
        shard once and waits for nothing. Not a proof of completeness (see the module's
        docstring)."""
        if self.marker_seconds is None:
            result = self.poll()
            self.apply(result.keys)
            self.report(result, force=True)
            return
        seconds = min(DRAIN_MARKER_SECONDS, max(0.5, 2 * self.marker_seconds))
        wanted = marker.write(self.ctx, self.source)
        deadline = time.monotonic() + seconds
        seen = False
        while True:
            result = self.poll(rounds=1)
            self.apply(result.keys)
            if seen and result.at_tip:
                break  # a whole pass after the marker arrived (see catch_up)
            seen = seen or wanted in result.markers
            if time.monotonic() > deadline:
                # the stream is still busy (other tables' changes, the runner's own writes to
                # the new table): what it has not brought, the verification copies
                if not seen:
                    self._marker_missing(seconds, frozen=True)
                break
            if not seen and result.at_tip:
                time.sleep(IDLE_POLL_SECONDS)
        self.report(result, force=True)

    def _marker_missing(self, seconds: float, *, frozen: bool = False) -> None:
        self.ctx.emit(Event(
            "cdc.marker_missing", f"step {self.step_id}: the stream did not deliver the "
            f"runner's marker within {seconds:g} s"
            + (" of the freeze" if frozen else "")
            + "; going on: the verification of every key range with writes frozen copies "
            "whatever the stream has not brought yet", self.step_id,
            data={"seconds": seconds, "frozen": frozen}))


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
        reader.drain()
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
    marker.clear(ctx, source)  # after the freeze ended: not on its clock; never fails
    if seconds is None:
        return
    ctx.emit(Event("cdc.freeze", f"step {step.id}: writes on {source} were frozen for "
                   f"{seconds:.3f} s (from the REVOKE to the new table in place)", step.id,
                   data={"freeze_seconds": seconds}))


def on_backup(verify: Step, source: str, backup: str) -> Step:
    """The verify step reading the source under its backup name (after the first rename): the
    statements the planner made for it (``details["on_backup"]``)."""
    if not backup:
        raise StepFailed(f"step {verify.id}: the swap step names no backup table; plan again "
                         "with --writes=cdc")
    moved = verify.details.get("on_backup")
    if not isinstance(moved, dict):
        return _legacy_on_backup(verify, source, backup)
    if moved.get("table") != backup:
        raise StepFailed(f"step {verify.id}: the plan verifies the backup "
                         f"{moved.get('table')}, but the swap keeps {source} as {backup}; "
                         "plan again with --writes=cdc")
    details = dict(verify.details)
    details["totals"] = [str(s) for s in moved["totals"]]
    details["repair"] = [str(s) for s in moved["repair"]]
    assert verify.batch is not None
    batch = dataclasses.replace(verify.batch, table=backup, bounds=str(moved["bounds"]))
    return dataclasses.replace(verify, sql=tuple(str(s) for s in moved["sql"]),
                               details=details, batch=batch)


def _legacy_on_backup(verify: Step, source: str, backup: str) -> Step:
    """A plan made by a dsql-migrate before ``details["on_backup"]`` (one already under way
    must still finish, and give back its privileges): its statements name the source only as
    ``FROM <source>``, so they are moved to the backup by name."""
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
