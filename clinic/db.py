"""The clinic's database: which one (a URL), opening it, and bringing its schema up to
date with the Alembic migrations in clinic/migrations.

`sqlite:///PATH` (the default, a file in the clinic's data directory) needs no set-up;
`postgresql://USER:PASSWORD@HOST/DB` is a real clinic's server (driven by psycopg 3).
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

DB_FILE = "clinic.db"


class DatabaseURLError(ValueError):
    """A database URL the clinic cannot use (the message says what is allowed)."""


def data_dir() -> Path:
    """$HOMEAPP_CLINIC_DATA, else $XDG_DATA_HOME/homeapp-clinic (~/.local/share/...)."""
    env = os.environ.get("HOMEAPP_CLINIC_DATA")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "homeapp-clinic"


def default_url() -> str:
    """$HOMEAPP_CLINIC_DB, else an SQLite file in the data directory."""
    return os.environ.get("HOMEAPP_CLINIC_DB") or f"sqlite:///{data_dir() / DB_FILE}"


def normalise_url(url: str) -> str:
    """The SQLAlchemy URL for a `--db` value: `postgresql://` means psycopg 3; only
    SQLite and PostgreSQL are accepted."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseURLError(f"{url!r} is not a database URL (use sqlite:///PATH or "
                               f"postgresql://USER@HOST/DB)") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseURLError(f"{url!r}: give the SQLite file (sqlite:///PATH); an in-memory "
                                   f"database would lose every upload")
        return parsed.render_as_string(hide_password=False)
    raise DatabaseURLError(f"{url!r}: the clinic runs on SQLite (sqlite:///PATH) or PostgreSQL "
                           f"(postgresql://USER@HOST/DB), not {backend}")


def open_engine(url: str | None = None, *, pool_size: int = 10) -> Engine:
    """An engine for `url` (default: `default_url()`). SQLite files get WAL, a busy
    timeout and enforced foreign keys; their folder is made if missing."""
    url = normalise_url(url or default_url())
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Python's sqlite3 opens transactions lazily; BEGIN IMMEDIATE on our side keeps
            # two writers from deadlocking on a lock upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def describe(engine: Engine) -> str:
    """The URL to print, password hidden."""
    return engine.url.render_as_string(hide_password=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (a new database gets every table)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
