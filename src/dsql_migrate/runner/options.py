"""How a run behaves: :class:`RunOptions` (from ``[runner]`` of the configuration and the
command line) and what a run returns (:class:`ApplyResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..profiles import Limits


@dataclass(frozen=True)
class RunOptions:
    allow_destructive: bool = False
    #: rows per batch to start from; None: the plan's batch size
    batch_size: int | None = None
    lease_seconds: float = 60.0
    wait_lock_seconds: float = 0.0
    async_timeout_seconds: float = 3600.0
    async_poll_seconds: float = 1.0
    #: lanes a large batched step is split into, each walked on its own connection; 4: the
    #: fewest that hide a 10 ms commit latency on the curve in docs/runner.md ("How many lanes")
    parallel: int = 4
    #: share of the per-transaction byte limit a batch may use, by estimated row width
    byte_budget_share: float = 0.5
    label: str | None = None
    #: mark a different, unfinished plan abandoned instead of refusing to run
    abandon_previous: bool = False
    #: run a plan that was applied again, when its tables are back to its premise
    reapply: bool = False
    limits: Limits = field(default_factory=Limits)
    #: --writes=cdc: the Kinesis data stream (ARN) the cluster's CDC stream delivers to; an
    #: apply option, not a plan option: the same reviewed plan (same hash) runs against
    #: staging and production, whose streams differ
    cdc_stream: str | None = None
    #: the Kinesis endpoint; None: AWS's regional endpoint (only for a dsql:// target)
    cdc_endpoint: str | None = None
    #: the target is AWS (dsql://): the stream must also be ACTIVE for the cluster in DSQL's
    #: control plane; otherwise a local emulator that needs no real credentials
    cdc_cluster: str | None = None
    #: ``--cdc-stream local``: the emulator's DSQL control plane (its fake ``GetStream``), for
    #: the same ACTIVE-for-this-cluster check as on AWS; None: AWS's regional endpoint
    cdc_dsql_endpoint: str | None = None
    #: ``--cdc-stream local``: the emulator's dummy credentials (access key id, secret), given
    #: to boto3 explicitly; None: boto3's own chain (environment, profile, role), as on AWS
    cdc_credentials: tuple[str, str] | None = field(default=None, repr=False)
    #: freeze writes once this many changed keys (or fewer) wait for a re-sync
    cdc_backlog_keys: int = 500
    #: read the stream from this long before the copy began (clock skew between the
    #: database and Kinesis's arrival times)
    cdc_start_margin_seconds: float = 5.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any], **overrides: Any) -> RunOptions:
        known = {"batch_size": int, "parallel": int, "lease_seconds": float,
                 "async_timeout_seconds": float, "async_poll_seconds": float,
                 "byte_budget_share": float, "cdc_backlog_keys": int,
                 "cdc_start_margin_seconds": float}
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key in ("retry", "state_schema"):
                continue
            if key not in known:
                raise ConfigError(
                    f"unknown setting {key!r} in [runner]",
                    hint=f"known: {', '.join(sorted([*known, 'retry', 'state_schema']))}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"[runner] {key} must be a positive number")
            values[key] = known[key](value)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class ApplyResult:
    plan_hash: str
    status: str  # done | nothing
    steps_run: list[int] = field(default_factory=list)
    steps_skipped: list[int] = field(default_factory=list)
