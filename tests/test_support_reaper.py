"""A test module's own local target (tests/_support.py ``private_target``) is removed by the
detached reaper when the test process is killed before its clean-up runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dsql_migrate.local import LocalInstance

pytestmark = pytest.mark.integration

TESTS = Path(__file__).parent


def test_a_killed_test_process_leaves_no_private_target_running(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""\
        import os, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(TESTS)!r})
        from _support import private_target

        class Factory:  # what private_target uses of pytest's tmp_path_factory
            def mktemp(self, name: str) -> Path:
                path = Path({str(tmp_path)!r}) / name
                path.mkdir()
                return path

        with private_target(Factory(), "killed") as instance:
            print(instance.directory, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up runs
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    directory = Path(done.stdout.strip())
    assert directory == tmp_path / "killed" / "target"
    instance = LocalInstance(directory)

    def alive() -> bool:  # the emulator or its PostgreSQL server
        status = instance.status()
        return status.server.running or status.emulator_pid is not None

    deadline = time.monotonic() + 60
    while alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    if alive():  # not reaped: remove it here (only then: the reaper may still be deleting)
        instance.destroy()
        pytest.fail(f"the local target in {directory} was left running")
