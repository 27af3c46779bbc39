"""What the emulator process and the commands that drive it share: the settings file, the pid
file, the public URL and fault injection; kept apart from the proxy and the job runner, so that a
command that only connects (``status``) does not import them (issue 18: start-up)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .iam import CERT_FILE, IamCredentials
from .postgres import HOST, make_url


@dataclass
class Faults:
    """Fault injection: what reliability tests turn on (settable at start and at run time)."""

    #: fraction (0..1) of write-transaction commits that fail with 40001 OC000
    commit_failure_rate: float = 0.0
    #: close connections older than this many seconds (DSQL: 3600)
    max_connection_age: float | None = None
    #: seconds added to every commit of a transaction that wrote (implicit ones included),
    #: before the client hears of it: DSQL's commit crosses availability zones, a local one
    #: does not; read-only transactions commit locally on DSQL too, so they get none
    commit_latency: float = 0.0
    #: seed of the random choices, so a faulty run can be replayed
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Faults:
        data = data or {}
        return cls(
            commit_failure_rate=float(data.get("commit_failure_rate") or 0.0),
            max_connection_age=(float(data["max_connection_age"])
                                if data.get("max_connection_age") else None),
            commit_latency=float(data.get("commit_latency") or 0.0),
            seed=int(data["seed"]) if data.get("seed") is not None else None,
        )



SETTINGS_FILE = "emulator.json"
PID_FILE = "emulator.pid"
LOG_FILE = "emulator.log"
APPLIED_FILE = "emulator.applied"


@dataclass
class EmulatorSettings:
    """What ``emulator.json`` holds."""

    profile: str = "current"
    port: int | None = None
    backend_port: int | None = None
    #: the server's Unix socket, in the instance's private socket directory
    backend_socket: str | None = None
    faults: Faults | None = None
    transaction_age: float | None = None
    #: overrides of the profile's limits (see ``Profile.with_limits``)
    limits: dict[str, int] | None = None
    #: TLS and IAM auth tokens, as a cluster endpoint (``local start --iam``)
    iam: bool = False
    generation: int = 0

    @classmethod
    def load(cls, state_dir: Path) -> EmulatorSettings:
        try:
            raw: dict[str, Any] = json.loads((state_dir / SETTINGS_FILE).read_text())
        except (OSError, ValueError):
            return cls()
        return cls(
            profile=str(raw.get("profile", "current")),
            port=raw.get("port"),
            backend_port=raw.get("backend_port"),
            backend_socket=raw.get("backend_socket"),
            faults=Faults.from_dict(raw.get("faults")),
            transaction_age=raw.get("transaction_age"),
            limits=raw.get("limits") or None,
            iam=bool(raw.get("iam", False)),
            generation=int(raw.get("generation", 0)),
        )

    def save(self, state_dir: Path) -> None:
        data = {
            "profile": self.profile,
            "port": self.port,
            "backend_port": self.backend_port,
            "backend_socket": self.backend_socket,
            "faults": (self.faults or Faults()).as_dict(),
            "transaction_age": self.transaction_age,
            "limits": self.limits,
            "iam": self.iam,
            "generation": self.generation,
        }
        tmp = state_dir / (SETTINGS_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(state_dir / SETTINGS_FILE)


def public_url(state_dir: Path, port: int, settings: EmulatorSettings) -> str:
    """The URL clients use: postgresql://, or with ``--iam`` a dsql:// URL that trusts the
    emulator's own certificate and signs tokens for its region."""
    if not settings.iam:
        return make_url(port)
    region = IamCredentials.load(state_dir).region
    cert = quote(str((state_dir / CERT_FILE).absolute()), safe="/")
    return f"dsql://admin@{HOST}:{port}?region={region}&sslrootcert={cert}"


def read_pid_file(state_dir: Path) -> tuple[int, int] | None:
    try:
        pid, port = (state_dir / PID_FILE).read_text().split()
        return int(pid), int(port)
    except (OSError, ValueError):
        return None
