"""The two Alembic projects the harness runs a history with.

Both use the history's own ``versions`` folder (``version_locations``). Side (a) runs
:mod:`realworld.stock_env` (Alembic's stock online ``env.py`` with a snapshot hook); side (b)
Alembic's stock ``generic`` ``env.py`` with the one-line change that enables the dsql-migrate
plugin (``from dsql_migrate.alembic import context``), as a user adopting the plugin has it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import alembic
from alembic.config import Config

STOCK_IMPORT = "from alembic import context\n"
PLUGIN_IMPORT = "from dsql_migrate.alembic import context\n"
TEMPLATE = Path(alembic.__file__).parent / "templates" / "generic"

INI = """\
[alembic]
script_location = %(here)s/migrations
path_separator = os

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = ERROR
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""


def sqlalchemy_url(url: str, driver: str = "psycopg") -> str:
    """``postgresql://...`` as a SQLAlchemy URL with ``driver`` (psycopg 3 by default)."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"expected a postgresql:// URL, got {scheme}://")
    return f"postgresql+{driver}://" + rest


def make(root: Path, versions: Path, url: str, *, plugin: bool,
         profile: str = "current", driver: str = "psycopg") -> Config:
    """An Alembic project in ``root`` running ``versions`` against ``url``."""
    scripts = root / "migrations"
    scripts.mkdir(parents=True, exist_ok=True)
    env = (TEMPLATE / "env.py").read_text()
    if not plugin:
        env = (Path(__file__).parent / "stock_env.py").read_text()
    else:
        if env.count(STOCK_IMPORT) != 1:
            raise RuntimeError(f"unexpected Alembic env.py template in {TEMPLATE}")
        env = env.replace(STOCK_IMPORT, PLUGIN_IMPORT)
    (scripts / "env.py").write_text(env)
    shutil.copy(TEMPLATE / "script.py.mako", scripts / "script.py.mako")
    ini = root / "alembic.ini"
    ini.write_text(INI)
    cfg = Config(str(ini))
    cfg.set_main_option("version_locations", str(versions).replace("%", "%%"))
    cfg.set_main_option("sqlalchemy.url",
                        sqlalchemy_url(url, "psycopg" if plugin else driver).replace("%", "%%"))
    if plugin:
        cfg.set_main_option("dsql_migrate.profile", profile)
    return cfg
