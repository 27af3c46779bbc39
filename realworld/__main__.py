"""``python -m realworld``: real Alembic histories on stock Alembic and through the plugin.

The command line, the only module of the harness that prints. Exit status: 0 when every
revision is ``same`` or ``refused-before-change``, 1 otherwise, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import time
from pathlib import Path

from .fetch import cache_dir
from .histories import HISTORIES, History
from .report import markdown, revision_line, summary, text
from .run import HistoryResult, RevisionResult, local_target, run_histories


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m realworld",
        description="Apply pinned public Alembic histories revision by revision with stock "
                    "Alembic on PostgreSQL and through the dsql-migrate plugin on the local "
                    "emulator, and compare the schemas after every revision.")
    parser.add_argument("--history", action="append", choices=sorted(HISTORIES),
                        help="a history to run (repeatable; default: all)")
    parser.add_argument("--profile", default="current", choices=["current", "classic"],
                        help="the emulator's capability profile (default: current)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="where downloads are kept (default: $DSQL_MIGRATE_REALWORLD_CACHE "
                             "or ~/.cache/dsql-migrate-realworld)")
    parser.add_argument("--local-dir", type=Path, default=None,
                        help="state directory of the local target the harness starts "
                             "(default: a temporary directory)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds one revision may take on one side (default: 300)")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the results as markdown tables to this file")
    parser.add_argument("--jobs", type=int, default=4,
                        help="histories run in parallel, each on a local target of its own "
                             "(default: 4)")
    parser.add_argument("--quiet", action="store_true", help="no line per revision while running")
    return parser.parse_args(argv)


def run_one(history: History, args: argparse.Namespace) -> HistoryResult:
    """One history on a local target of its own (so histories can run in parallel)."""

    def progress(history: History, result: RevisionResult) -> None:
        if not args.quiet:
            line = f"[{history.name}] {revision_line(result, 140)}"
            print(line, file=sys.stderr, flush=True)  # noqa: T201

    local_dir = args.local_dir / history.name if args.local_dir else None
    with local_target(local_dir, args.profile) as target:
        [result] = run_histories([history], target=target,
                                 cache=args.cache or cache_dir(), profile=args.profile,
                                 timeout=args.timeout, progress=progress)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    histories = [HISTORIES[n] for n in (args.history or sorted(HISTORIES))]
    started = time.monotonic()
    jobs = max(1, min(args.jobs, len(histories)))
    if jobs == 1:
        results = [run_one(h, args) for h in histories]
    else:
        with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(run_one, histories, [args] * len(histories)))
    print(text(results))  # noqa: T201
    for result in results:
        print(summary(result))  # noqa: T201
    print(f"total: {time.monotonic() - started:.0f} s")  # noqa: T201
    if args.markdown:
        args.markdown.write_text(markdown(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # noqa: T201
        sys.exit(130)
