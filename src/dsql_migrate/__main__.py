"""``python -m dsql_migrate`` is the same as the ``dsql-migrate`` command."""

from __future__ import annotations

from .cli import run

if __name__ == "__main__":
    run()
