"""``SqlMetadataStore``: metadata on SQLAlchemy 2, with Alembic migrations applied on open.

The dialect modules (``sqlite.py``, ``postgres.py``) build the engine and know how to take the
write lock; this module holds what the dialects share.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from mainspring.errors import StorageError

MIGRATIONS = Path(__file__).with_name("migrations")

#: Takes the write lock inside an open transaction (a no-op where BEGIN already took it).
LockFn = Callable[[Connection, str], None]


def alembic_config(connection: Connection) -> Config:
    """An Alembic configuration that runs this package's migrations on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration's revision id."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


class SqlMetadataStore:
    """A :class:`~mainspring.storage.base.MetadataStore` over an SQLAlchemy engine."""

    def __init__(
        self,
        url: str,
        engine: Engine,
        *,
        lock: LockFn,
        serialize: bool = False,
        migrate: bool = True,
    ) -> None:
        self.url = url
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock = lock
        # in-memory SQLite shares one connection between threads: serialise every use of it
        self._mutex: threading.RLock | None = threading.RLock() if serialize else None
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"SqlMetadataStore({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def _guard(self) -> Iterator[None]:
        if self._mutex is None:
            yield
            return
        with self._mutex:
            yield

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._guard(), self._errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, lock: str = "main") -> Iterator[Connection]:
        with self._guard(), self._errors(), self.engine.connect() as raw:
            conn = raw.execution_options(mainspring_write=True)
            with conn.begin():
                self._lock(conn, lock)
                yield conn

    @contextmanager
    def write_on(self, conn: Connection, lock: str = "main") -> Iterator[Connection]:
        """Like :meth:`write`, on a connection the caller keeps: a dedicated writer's own, with
        its own settings such as SQLite's ``synchronous`` (``conn`` from ``engine.connect()``)."""
        with self._guard(), self._errors():
            conn = conn.execution_options(mainspring_write=True)
            with conn.begin():
                self._lock(conn, lock)
                yield conn

    def migrate(self) -> None:
        """Bring the schema up to the newest migration (idempotent, safe from many processes)."""
        with self.write("migrations") as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            if current != head_revision():
                command.upgrade(alembic_config(conn), "head")

    def revision(self) -> str | None:
        """The schema revision the database is at."""
        with self.read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StorageError(
                f"metadata store {self.engine.url.render_as_string(hide_password=True)} "
                f"failed: {exc.orig}"
            ) from exc
        except SQLAlchemyError as exc:
            if type(exc).__name__ == "IntegrityError":
                raise
            raise StorageError(f"metadata store failed: {exc}") from exc
