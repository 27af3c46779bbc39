"""Lint a large script in two processes (``lint_script(..., workers=2)``, what the command does
where two CPUs are usable): the same diagnostics in the same order as one process.

- The fork comes first: each process parses the whole script itself (each must see all of it:
  rules look around a statement, e.g. back to its CREATE TABLE). Forking a process that already
  holds the parse trees would make the child copy every memory page it touches (reference
  counts), which costs more than parsing again.
- The statements are cut into chunks, and the chunk numbers are tickets in a pipe that both
  processes read one byte at a time (a pipe read is atomic, so each chunk goes to exactly one
  process). A process that is slower, because its CPU is busy with other work, simply takes
  fewer chunks: the command is never much slower than one process alone.
- The per-statement pass keeps no state from one statement to the next, so a chunk's
  diagnostics do not depend on who linted it. The child streams each chunk's diagnostics back
  as plain values; the parent puts all chunks together in order and adds the whole-script rules.
- When the tickets run out, the parent takes what the child has sent, kills it (it may be
  starved of CPU, or still parsing) and runs the chunks the child took and did not send: it
  never waits for the child, and whatever the child did or failed to do, the result (or the
  error of a rule bug) is the serial one.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct

from ..sql import parse_script
from .core import Diagnostic, FixResult, FixStatus, LintContext, Severity
from .engine import LintResult, LintSettings, _finish, _Pass

#: at most this many chunks (a ticket is one byte); at least this many statements per chunk
MAX_CHUNKS = 255
MIN_CHUNK = 64
_HEADER = struct.Struct("!I")  # the length of one chunk's message from the child

Found = tuple[list[Diagnostic], dict[int, set[str]]]


def chunks_of(count: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each chunk of ``count`` statements, in order."""
    size = max(MIN_CHUNK, -(-count // MAX_CHUNKS))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def lint_in_two(script: str, settings: LintSettings, path: str) -> LintResult:
    """:func:`~dsql_migrate.lint.engine.lint_script` in two processes (see the module)."""
    tickets_read, tickets_write = os.pipe()
    results_read, results_write = os.pipe()
    # the chunks depend on the count of statements, which each process finds by parsing: the
    # parent writes the tickets once it knows it (the child, done first, waits for them)
    pid = os.fork()
    if pid == 0:
        _child(script, settings, path, tickets_read, tickets_write, results_read,
               results_write)
    os.close(results_write)
    try:
        return _parent(script, settings, path, pid, tickets_read, tickets_write, results_read)
    finally:
        os.close(results_read)
        os.close(tickets_read)


def _child(script: str, settings: LintSettings, path: str, tickets_read: int,
           tickets_write: int, results_read: int, results_write: int) -> None:
    code = 1
    try:
        os.close(tickets_write)
        os.close(results_read)
        run = _pass(script, settings, path)
        spans = chunks_of(len(run.statements))
        while ticket := os.read(tickets_read, 1):
            number = ticket[0]
            _send(results_write, number, run.run(*spans[number]))
        code = 0
    finally:
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers


def _parent(script: str, settings: LintSettings, path: str, pid: int, tickets_read: int,
            tickets_write: int, results_read: int) -> LintResult:
    run = _pass(script, settings, path)
    spans = chunks_of(len(run.statements))
    try:
        os.write(tickets_write, bytes(range(len(spans))))
    finally:
        os.close(tickets_write)  # read to the end, the tickets pipe then says: none left
    done: dict[int, Found] = {}
    inbox = bytearray()
    os.set_blocking(results_read, False)
    try:
        while ticket := os.read(tickets_read, 1):
            number = ticket[0]
            done[number] = run.run(*spans[number])
            _drain(results_read, inbox)  # keep the child from blocking on a full pipe
        _drain(results_read, inbox)
        _take(inbox, done)
    finally:
        _kill(pid)  # what it has not sent yet is not waited for: it may be starved of CPU
        os.waitpid(pid, 0)
    for number, span in enumerate(spans):  # the chunks it took and did not send
        if number not in done:
            done[number] = run.run(*span)
    out: list[Diagnostic] = []
    ignored: dict[int, set[str]] = {}
    for number in range(len(spans)):
        out.extend(done[number][0])
        ignored.update(done[number][1])
    return LintResult(path, _finish(run, out, ignored), run.statements)


def _pass(script: str, settings: LintSettings, path: str) -> _Pass:
    statements = parse_script(script)
    ctx = LintContext(settings.profile, statements, dict(settings.options))
    return _Pass(statements, settings, path, ctx)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone already
        os.kill(pid, signal.SIGKILL)


def _send(fd: int, number: int, found: Found) -> None:
    """One chunk's diagnostics as plain values (faster to pickle than objects)."""
    rows = [(d.rule, d.severity.value, d.line, d.column, d.message, d.suggestion,
             d.statement_index, d.statement_preview,
             None if d.fix_result is None else (d.fix_result.status.value, d.fix_result.detail),
             d.path) for d in found[0]]
    body = pickle.dumps((number, rows, found[1]), protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(body)) + body)
    while view:
        view = view[os.write(fd, view):]


def _drain(fd: int, inbox: bytearray) -> None:
    try:
        while data := os.read(fd, 1 << 20):
            inbox += data
    except BlockingIOError:
        pass


_SEVERITIES = {s.value: s for s in Severity}
_STATUSES = {s.value: s for s in FixStatus}


def _take(inbox: bytearray, done: dict[int, Found]) -> None:
    """Move the whole messages at the head of ``inbox`` into ``done``."""
    at = 0
    while len(inbox) - at >= _HEADER.size:
        (size,) = _HEADER.unpack_from(inbox, at)
        if len(inbox) - at - _HEADER.size < size:
            break
        start = at + _HEADER.size
        number, rows, ignored = pickle.loads(inbox[start:start + size])
        at = start + size
        done[number] = ([
            Diagnostic(rule, _SEVERITIES[severity], line, column, message, suggestion, index,
                       preview, None if fix is None else FixResult(_STATUSES[fix[0]], fix[1]),
                       where)
            for (rule, severity, line, column, message, suggestion, index, preview, fix, where)
            in rows], ignored)
    del inbox[:at]


__all__ = ["MAX_CHUNKS", "MIN_CHUNK", "chunks_of", "lint_in_two"]
