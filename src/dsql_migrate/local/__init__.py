"""The local DSQL target: an embedded PostgreSQL server behind DSQL's rules."""

from __future__ import annotations

from .instance import DEFAULT_DIR, InstanceStatus, LocalInstance
from .postgres import EmbeddedPostgres, ServerStatus

__all__ = ["DEFAULT_DIR", "EmbeddedPostgres", "InstanceStatus", "LocalInstance", "ServerStatus"]
