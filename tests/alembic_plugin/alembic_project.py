"""Builds a real Alembic project: Alembic's stock env.py with the one-line change, and the
revisions in ``revisions/``."""

from __future__ import annotations

import shutil
from pathlib import Path

import alembic

HERE = Path(__file__).parent
STOCK_IMPORT = "from alembic import context\n"
PLUGIN_IMPORT = "from dsql_migrate.alembic import context\n"

INI = """\
[alembic]
script_location = %(here)s/migrations
prepend_sys_path = %(here)s
path_separator = os
sqlalchemy.url = {url}
dsql_migrate.profile = {profile}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""


def stock_env() -> str:
    return (Path(alembic.__file__).parent / "templates" / "generic" / "env.py").read_text()


def sa_url(url: str, driver: str = "postgresql+psycopg") -> str:
    return driver + "://" + url.split("://", 1)[1]


def make_project(root: Path, url: str, *, profile: str = "current",
                 revisions: tuple[str, ...] = ("r1", "r2", "r3", "r4"),
                 driver: str = "postgresql+psycopg") -> Path:
    """``root/alembic.ini`` + ``root/migrations`` (stock env.py with the one-line change)."""
    scripts = root / "migrations"
    (scripts / "versions").mkdir(parents=True)
    env = stock_env()
    assert env.count(STOCK_IMPORT) == 1
    (scripts / "env.py").write_text(env.replace(STOCK_IMPORT, PLUGIN_IMPORT))
    mako = Path(alembic.__file__).parent / "templates" / "generic" / "script.py.mako"
    shutil.copy(mako, scripts / "script.py.mako")
    for name in revisions:
        source = next((HERE / "revisions").glob(f"{name}_*.py"))
        shutil.copy(source, scripts / "versions" / source.name)
    (root / "alembic.ini").write_text(INI.format(url=sa_url(url, driver), profile=profile))
    return root / "alembic.ini"
