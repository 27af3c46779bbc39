"""The histories the harness knows: pinned public projects' Alembic histories, as data.

Each entry names a PyPI distribution and version (downloaded with ``pip download --no-deps``,
never installed), the folder of its Alembic revisions inside the wheel, the few extra wheels its
revisions need to import (pinned), and the modules that are *stubbed* instead (see
:mod:`realworld.loader`). ``setup`` names a per-history setup in :mod:`realworld.setups` that
runs on both sides before the first revision (for projects that build a base schema outside
Alembic); nothing else about a history is special-cased.
"""

from __future__ import annotations

from dataclasses import dataclass

PYDANTIC = ("pydantic==2.11.7", "pydantic-core==2.33.2", "annotated-types==0.8.0",
            "typing-inspection==0.4.5")


@dataclass(frozen=True)
class History:
    name: str
    dist: str
    version: str
    versions_dir: str
    wheels: tuple[str, ...] = ()
    stubs: tuple[str, ...] = ()
    setup: str | None = None
    why: str = ""

    @property
    def requirement(self) -> str:
        return f"{self.dist}=={self.version}"


HISTORIES: dict[str, History] = {h.name: h for h in (
    History(
        "optuna", "optuna", "5.1.0", "optuna/storages/_rdb/alembic/versions",
        stubs=("numpy", "colorlog", "tqdm"),
        why="numpy only computes float limits for data migrations; colorlog/tqdm are logging",
    ),
    History(
        "dagster", "dagster", "1.13.29", "dagster/_core/storage/alembic/versions",
        wheels=("dagster-shared==1.13.29", *PYDANTIC),
        stubs=("filelock", "dagster_pipes", "pytz", "toposort", "docstring_parser",
               "coloredlogs", "tqdm", "structlog"),
        setup="dagster",
        why="the revisions import dagster's storage helpers, which import dagster's instance",
    ),
    History(
        "prefect", "prefect", "3.9.1",
        "prefect/server/database/_migrations/versions/postgresql",
        wheels=PYDANTIC,
    ),
    History(
        "airflow", "apache-airflow-core", "3.3.2", "airflow/migrations/versions",
    ),
)}
