"""One suite over every MetadataStore: in-memory SQLite, an SQLite file, and a real PostgreSQL.

Each test gets an empty database: a new file for SQLite, a new database for PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import alembic.command
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import mainspring
from mainspring.errors import ConfigError
from mainspring.records import utcnow
from mainspring.storage import MetadataStore, open_metadata_store, schema
from mainspring.storage.chain import HashChain
from mainspring.storage.memory import memory_metadata
from mainspring.storage.sql import SqlMetadataStore, head_revision

ALL = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.service)]
SHARED = ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]  # reopenable

APPENDS_PER_WORKER = 50


@dataclass
class Backend:
    """A metadata backend under test; ``url`` is ``None`` for the in-memory store."""

    name: str
    url: str | None
    opened: list[SqlMetadataStore] = field(default_factory=list)

    def open(self, *, migrate: bool = True) -> SqlMetadataStore:
        store = (
            memory_metadata()
            if self.url is None
            else open_metadata_store(self.url, migrate=migrate)
        )
        assert isinstance(store, SqlMetadataStore)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=ALL)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        chosen = Backend("memory", None)
    elif request.param == "sqlite":
        chosen = Backend("sqlite", f"sqlite:///{tmp_path / 'metadata.db'}")
    else:
        chosen = Backend("postgresql", request.getfixturevalue("fresh_postgres_url"))
    yield chosen
    chosen.close_all()


@pytest.fixture
def store(backend: Backend) -> SqlMetadataStore:
    return backend.open()


def table_names(store: SqlMetadataStore) -> set[str]:
    with store.read() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_is_a_metadata_store(store: SqlMetadataStore, backend: Backend) -> None:
    assert isinstance(store, MetadataStore)
    assert store.dialect == ("postgresql" if backend.name == "postgresql" else "sqlite")
    assert store.url


def test_migrations_run_on_an_empty_database(backend: Backend) -> None:
    if backend.url is not None:
        bare = backend.open(migrate=False)
        assert table_names(bare) == set()
        assert bare.revision() is None
    store = backend.open()
    assert store.revision() == head_revision()
    assert table_names(store) == {*schema.metadata.tables, "alembic_version"}


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_reopening_a_migrated_database_is_a_no_op(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend.open()
    chain = HashChain(first, "history")
    with first.write() as conn:
        chain.append(conn, actor="ann", action="create", subject="model/credit")
    first.close()

    def no_upgrade(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a migrated database must not be upgraded again")

    monkeypatch.setattr(alembic.command, "upgrade", no_upgrade)
    again = backend.open()
    assert again.revision() == head_revision()
    assert [e.subject for e in HashChain(again, "history").entries()] == ["model/credit"]


def test_migrate_twice_is_a_no_op(store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_upgrade(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a migrated database must not be upgraded again")

    monkeypatch.setattr(alembic.command, "upgrade", no_upgrade)
    store.migrate()
    assert store.revision() == head_revision()


def test_schema_matches_migrations(store: SqlMetadataStore) -> None:
    """schema.py and migrations/ agree: autogenerate finds nothing to change after migrating."""
    with store.read() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert differences == []


def test_schema_comparison_notices_drift(store: SqlMetadataStore) -> None:
    """The comparison above is not vacuous: a column the migrations lack is reported."""
    drifted = sa.MetaData()
    for table in schema.metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["tokens"].append_column(sa.Column("extra", sa.Text, nullable=True))
    with store.read() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), drifted)
    assert [d[0] for d in differences] == ["add_column"]


def test_write_commits(store: SqlMetadataStore) -> None:
    with store.write() as conn:
        conn.execute(schema.models.insert().values(_model("credit")))
    with store.read() as conn:
        assert conn.execute(sa.select(schema.models.c.name)).scalars().all() == ["credit"]


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_committed_writes_are_seen_by_another_store(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    with writer.write() as conn:
        conn.execute(schema.models.insert().values(_model("credit")))
    with reader.read() as conn:
        assert conn.execute(sa.select(schema.models.c.name)).scalars().all() == ["credit"]


def test_write_rolls_back_on_exception(store: SqlMetadataStore) -> None:
    chain = HashChain(store, "history")
    with pytest.raises(RuntimeError, match="boom"), store.write() as conn:
        conn.execute(schema.models.insert().values(_model("credit")))
        chain.append(conn, actor="ann", action="create", subject="model/credit")
        chain.append(conn, actor="ann", action="describe", subject="model/credit")
        raise RuntimeError("boom")
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.models)).scalar() == 0
    assert chain.count() == 0
    # the store is still usable and the chain starts afresh
    with store.write() as conn:
        entry = chain.append(conn, actor="ann", action="create", subject="model/credit")
    assert entry.seq == 1
    assert chain.verify().ok


def test_failed_statement_rolls_back_the_whole_transaction(store: SqlMetadataStore) -> None:
    with pytest.raises(sa.exc.IntegrityError), store.write() as conn:
        conn.execute(schema.models.insert().values(_model("credit")))
        conn.execute(schema.models.insert().values(_model("credit")))  # unique name
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.models)).scalar() == 0


def test_writers_in_threads_are_serialised(backend: Backend) -> None:
    store = backend.open()
    chain = HashChain(store, "counter")
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for i in range(APPENDS_PER_WORKER):
                with store.write() as conn:
                    chain.append(
                        conn, actor=name, action="increment", subject="c", details={"i": i}
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    _assert_counter(chain, {"t0", "t1"})


WORKER = """
import sys

from mainspring.storage import open_metadata_store
from mainspring.storage.chain import HashChain

url, count, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print("ready", flush=True)
sys.stdin.readline()  # start together with the other worker
store = open_metadata_store(url)  # both workers migrate the empty database at once
chain = HashChain(store, "counter")
for i in range(count):
    with store.write() as conn:
        chain.append(conn, actor=name, action="increment", subject="c", details={"i": i})
store.close()
print("done", flush=True)
"""


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_writers_in_processes_are_serialised(backend: Backend, tmp_path: Path) -> None:
    """Two processes, each 50 read-then-write transactions, on an empty database: seqs 1..100."""
    assert backend.url is not None
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    src = str(Path(mainspring.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": src}
    with contextlib.ExitStack() as stack:
        workers = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, str(script), backend.url, str(APPENDS_PER_WORKER), f"p{n}"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
            for n in range(2)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                line = worker.stdout.readline()
                if line.strip() != "ready":
                    _, err = worker.communicate(timeout=60)
                    pytest.fail(f"worker did not start: {line}{err}")
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            results = [worker.communicate(timeout=240) for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert out.strip() == "done"
    _assert_counter(HashChain(backend.open(), "counter"), {"p0", "p1"})


# --- URI dispatch ----------------------------------------------------------------------------


def test_open_in_memory_sqlite() -> None:
    store = open_metadata_store("sqlite://")
    try:
        assert store.dialect == "sqlite"
        assert isinstance(store, SqlMetadataStore)
        assert store.revision() == head_revision()
    finally:
        store.close()


def test_open_sqlite_file_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "metadata.db"
    store = open_metadata_store(f"sqlite:///{path}")
    try:
        assert path.exists()
        assert isinstance(store, SqlMetadataStore)
        assert store.revision() == head_revision()
    finally:
        store.close()


@pytest.mark.service
@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_open_postgresql(fresh_postgres_url: str, scheme: str) -> None:
    url = scheme + fresh_postgres_url.removeprefix("postgresql")
    store = open_metadata_store(url)
    try:
        assert store.dialect == "postgresql"
        assert store.url == url
        assert isinstance(store, SqlMetadataStore)
        assert store.revision() == head_revision()
    finally:
        store.close()


@pytest.mark.parametrize("url", ["mysql://db/x", "mongodb://h", "nonsense", "file:///tmp/x"])
def test_open_metadata_store_refuses_unknown_schemes(url: str) -> None:
    with pytest.raises(ConfigError, match="unknown scheme") as info:
        open_metadata_store(url)
    assert info.value.key == "metadata"


# --- helpers ---------------------------------------------------------------------------------


def _model(name: str) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "description": "",
        "created_at": utcnow(),
        "created_by": "ann",
    }


def _assert_counter(chain: HashChain, actors: set[str]) -> None:
    entries = chain.entries()
    total = APPENDS_PER_WORKER * len(actors)
    assert [e.seq for e in entries] == list(range(1, total + 1))
    for actor in actors:
        mine = [e.details["i"] for e in entries if e.actor == actor]
        assert mine == list(range(APPENDS_PER_WORKER))
    verification = chain.verify()
    assert verification.ok, str(verification)
    assert verification.checked == total
