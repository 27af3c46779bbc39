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
    #: the project's own env.py runs on an AUTOCOMMIT connection: so does side (a)
    autocommit: bool = False
    #: environment variables set while the history runs; ``{workdir}`` is the run's scratch
    #: directory (so that nothing is written to the user's home)
    env: tuple[tuple[str, str], ...] = ()
    #: the SQLAlchemy driver of side (a), the one the project runs on PostgreSQL (the plugin
    #: side always uses psycopg 3): drivers bind values differently (psycopg 3 casts a string
    #: literal ``$1::VARCHAR``, psycopg2 sends it untyped), and some revisions depend on it
    stock_driver: str = "psycopg"
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
        setup="dagster", autocommit=True,
        why="the revisions import dagster's storage helpers, which import dagster's instance",
    ),
    History(
        "prefect", "prefect", "3.9.1",
        "prefect/server/database/_migrations/versions/postgresql",
        wheels=(*PYDANTIC, "pydantic-settings==2.16.3", "python-dotenv==1.2.4",
                "pydantic-extra-types==2.11.1", "pendulum==3.3.0", "python-dateutil==4.0.0",
                "six==1.17.0", "tzdata==2026.6", "greenlet==3.5.6", "cloudpickle==3.1.3",
                "python-slugify==9.2.0", "text-unidecode==1.3", "httpx==0.29.0",
                "httpcore==1.0.9", "anyio==4.16.0", "certifi==2026.10.19.post1",
                "h11==0.16.0", "idna==3.21", "sniffio==1.3.1", "cachetools==8.0.3",
                "asyncpg==0.32.0"),
        stubs=("orjson", "humanize", "griffe", "asgi_lifespan", "starlette",
               "coolname", "jsonschema", "referencing", "fsspec", "toml", "opentelemetry",
               "prometheus_client", "websockets", "whenever", "pytz",
               "jinja2_humanize_extension"),
        # prefect runs PostgreSQL on asyncpg, which sends SQL without parameters as it is;
        # psycopg 3 and psycopg2 (through SQLAlchemy) parse format('%I.%I', ...) as placeholders
        stock_driver="asyncpg",
        why="prefect's package __init__ loads its settings (pydantic-settings), its block "
            "registry (checksums via cloudpickle, slugs via python-slugify, an httpx client); "
            "server, telemetry and serialisation extras are stubbed",
    ),
    History(
        "airflow", "apache-airflow-core", "3.3.2", "airflow/migrations/versions",
        wheels=(*PYDANTIC, "pendulum==3.3.0", "python-dateutil==4.0.0", "six==1.17.0",
                "tzdata==2026.6", "greenlet==3.5.6", "attrs==26.1.0", "structlog==26.1.0",
                "pygtrie==2.6.2", "aiosqlite==0.22.1", "lazy-object-proxy==1.13.0",
                "psycopg2-binary==2.9.13"),
        stubs=("importlib_metadata", "methodtools", "uuid6", "jsonschema", "cryptography",
               "opentelemetry", "dill", "itsdangerous", "airflow.sdk"),
        env=(("AIRFLOW_HOME", "{workdir}/airflow-home"),),
        stock_driver="psycopg2",
        why="importing airflow initialises its settings, logging (structlog, pygtrie) and a "
            "default SQLite engine (aiosqlite); the task SDK (airflow.sdk, another "
            "distribution) and serialisation/crypto extras are stubbed",
    ),
)}
