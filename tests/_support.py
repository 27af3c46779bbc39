"""Helpers shared by the test modules, in one place: local targets of their own (started,
destroyed, and reaped if pytest is killed) and running ``dsql-migrate`` in-process.

tests/conftest.py puts this folder on ``sys.path``: a test module imports ``from _support
import run``; a fixture that needs a target of its own uses the ``private_target`` fixture,
which is :func:`private_target` bound to the session's ``tmp_path_factory``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dsql_migrate.cli import main
from dsql_migrate.local import LocalInstance

#: a detached process that removes a test's local target once the test process is gone: a
#: pytest run that is killed (SIGKILL, a CI timeout) never reaches its fixtures' clean-up, and
#: left its emulators and their PostgreSQL servers running
_REAPER = """
import os, sys, time
from pathlib import Path
owner, directory = int(sys.argv[1]), Path(sys.argv[2])
while True:
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
if directory.exists():
    from dsql_migrate.local import LocalInstance
    LocalInstance(directory).destroy()
"""


#: the ``private_target`` fixture: ``private_target(name, **settings)``, see :func:`private_target`
PrivateTarget = Callable[..., AbstractContextManager[LocalInstance]]


def reap_when_gone(instance: LocalInstance) -> None:
    """Remove ``instance`` when this process ends, however it ends (see ``_REAPER``)."""
    subprocess.Popen([sys.executable, "-c", _REAPER, str(os.getpid()), str(instance.directory)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


@contextmanager
def private_target(tmp_path_factory: pytest.TempPathFactory, name: str,
                   **settings: Any) -> Iterator[LocalInstance]:
    """A local target of its own in a fresh ``name`` temporary folder, started with
    ``settings`` (:class:`LocalInstance`'s: ``profile=``, ``cdc=``, ``iam=``, ...) and
    destroyed afterwards, or by the reaper if this process is killed first."""
    instance = LocalInstance(tmp_path_factory.mktemp(name) / "target", **settings)
    reap_when_gone(instance)
    try:
        instance.start()
        yield instance
    finally:
        instance.destroy()


def isolate_aws(mp: pytest.MonkeyPatch, credentials: Mapping[str, str], nowhere: Path) -> None:
    """Only ``credentials`` (``AWS_*`` variables) for the AWS SDK: no profile, session token,
    container credentials or config files (``nowhere``: a path that does not exist), so an
    ``--iam`` target and its clients sign with the test's fake keys, never the machine's."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        mp.delenv(name, raising=False)
    mp.setenv("AWS_CONFIG_FILE", str(nowhere))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    for name, value in credentials.items():
        mp.setenv(name, value)


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """``dsql-migrate ARGS`` in this process: (exit code, stdout, stderr); a Python traceback
    on stderr fails the test (a user mistake gets a message, never a traceback)."""
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, result.stdout, result.stderr


def cli(*args: str) -> Result:
    """``dsql-migrate ARGS`` in this process, its exceptions raised (not caught by click)."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)
