"""Running the server as an unprivileged account when we are root.

PostgreSQL refuses to run as root. When dsql-migrate runs as root (CI containers do), the server
programs run as an unprivileged account: ``$DSQL_MIGRATE_PG_USER``, else ``postgres``, else
``nobody``. Only the server's own data directory is handed to that account; nothing else on the
system changes permissions. If that account cannot reach the requested state directory (for
example one under ``/root``), the data directory is placed in a private directory of its own under
``/var/tmp`` and the state directory records where.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalServerError

log = logging.getLogger(__name__)

ENV_USER = "DSQL_MIGRATE_PG_USER"
FALLBACK_USERS = ("postgres", "nobody")


@dataclass(frozen=True)
class Account:
    """A system account to run server programs as (None fields: the current user)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def current(cls) -> Account:
        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(name=name, uid=uid, gid=os.getegid())

    @property
    def is_switch(self) -> bool:
        """True when programs must be started as another user than ours."""
        return self.uid != os.geteuid()

    def popen_kwargs(self) -> dict[str, object]:
        """Arguments for :mod:`subprocess` to run a child as this account, with no extra groups."""
        if not self.is_switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def can_reach(self, path: Path) -> bool:
        """Whether this account can search ``path`` (and so every directory above it)."""
        if not self.is_switch:
            return os.access(path, os.X_OK)
        # the kernel is the only reliable judge of ACLs, capabilities and mount options
        result = subprocess.run(  # type: ignore[call-overload]
            ["test", "-x", str(path)], cwd="/", check=False, **self.popen_kwargs()
        )
        return bool(result.returncode == 0)

    def give(self, path: Path) -> None:
        """Make this account the owner of ``path`` (a file or a directory we created)."""
        if self.is_switch:
            os.chown(path, self.uid, self.gid)


def server_account(env: dict[str, str] | None = None) -> Account:
    """The account to run PostgreSQL as: ourselves, unless we are root."""
    if os.geteuid() != 0:
        return Account.current()
    environ = os.environ if env is None else env
    names = [environ[ENV_USER]] if environ.get(ENV_USER) else list(FALLBACK_USERS)
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise LocalServerError(
                f"account {name!r} is root; PostgreSQL refuses to run as root",
                hint=f"set {ENV_USER} to an unprivileged account",
            )
        try:
            gid = grp.getgrgid(entry.pw_gid).gr_gid
        except KeyError:
            gid = entry.pw_gid
        return Account(name=name, uid=entry.pw_uid, gid=gid)
    raise LocalServerError(
        f"running as root, and none of the accounts {', '.join(names)} exists to run "
        "PostgreSQL as (it refuses to run as root)",
        hint=f"create an unprivileged account ('useradd --system pgrun') and set {ENV_USER}",
    )
