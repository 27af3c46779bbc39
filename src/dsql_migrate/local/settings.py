"""What the emulator process and the commands that drive it share: the settings file, the pid
file, the public URL and fault injection; kept apart from the proxy and the job runner, so that a
command that only connects (``status``) does not import them (issue 18: start-up)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar
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



@dataclass
class CdcSettings:
    """Change data capture (``local start --cdc``, :mod:`.cdc`): a DSQL-style CDC stream of
    every committed row change, in a local Kinesis-compatible server."""

    enabled: bool = False
    #: shards of the Kinesis stream (records go to random shards, as DSQL's)
    shards: int = 4
    #: chaos: fraction of records sent twice (DSQL delivers at least once)
    duplicate_rate: float = 0.0
    #: chaos: fraction of records held back, each for up to ``max_delay`` seconds
    delay_rate: float = 0.0
    max_delay: float = 0.0
    #: chaos: records shuffled within windows of this many (DSQL's delivery is unordered)
    reorder_window: int = 0
    #: seed of the chaos and of the partition keys, so a run can be replayed
    seed: int | None = None

    #: what ``--cdc-chaos`` turns on
    CHAOS: ClassVar[dict[str, float]] = {
        "duplicate_rate": 0.1, "delay_rate": 0.1, "max_delay": 0.3, "reorder_window": 16}

    @property
    def chaos(self) -> bool:
        return bool(self.duplicate_rate or self.delay_rate or self.reorder_window > 1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CdcSettings:
        data = data or {}
        return cls(
            enabled=bool(data.get("enabled", False)),
            shards=int(data.get("shards") or 4),
            duplicate_rate=float(data.get("duplicate_rate") or 0.0),
            delay_rate=float(data.get("delay_rate") or 0.0),
            max_delay=float(data.get("max_delay") or 0.0),
            reorder_window=int(data.get("reorder_window") or 0),
            seed=int(data["seed"]) if data.get("seed") is not None else None,
        )


SETTINGS_FILE = "emulator.json"
PID_FILE = "emulator.pid"
LOG_FILE = "emulator.log"
APPLIED_FILE = "emulator.applied"
#: where the running emulator tells how to reach its CDC stream (see :mod:`.cdc`)
CDC_FILE = "emulator.cdc.json"


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
    #: change data capture (``local start --cdc``); None: off
    cdc: CdcSettings | None = None

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
            cdc=CdcSettings.from_dict(raw["cdc"]) if raw.get("cdc") else None,
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
            "cdc": self.cdc.as_dict() if self.cdc is not None else None,
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


def read_cdc_info(state_dir: Path) -> dict[str, Any] | None:
    """What the running emulator wrote about its CDC stream (the ``cdc_*`` keys), or None."""
    try:
        found = json.loads((state_dir / CDC_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def read_pid_file(state_dir: Path) -> tuple[int, int] | None:
    try:
        pid, port = (state_dir / PID_FILE).read_text().split()
        return int(pid), int(port)
    except (OSError, ValueError):
        return None
