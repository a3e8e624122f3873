"""One suite over every online store: SQLite (file and in memory), Redis (over TCP and over its
unix-domain socket) and the in-memory twin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mainspring.errors import ConfigError
from mainspring.storage import OnlineStore, open_online_store

BACKENDS = [
    "memory",
    "sqlite",
    "sqlite-memory",
    pytest.param("redis", marks=pytest.mark.service),
    pytest.param("redis-unix", marks=pytest.mark.service),
]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'online.db'}"
    elif request.param == "sqlite-memory":
        url = "sqlite://"
    elif request.param == "redis-unix":
        url = request.getfixturevalue("redis_unix_url")
    else:
        url = request.getfixturevalue("redis_url")
    opened = open_online_store(url)
    yield opened
    opened.close()


def test_is_an_online_store(store: OnlineStore) -> None:
    assert isinstance(store, OnlineStore)
    assert store.url


def test_reads_what_was_written_in_request_order(store: OnlineStore) -> None:
    assert store.write("v:1", [("a", 10, b"[1.0]"), ("b", 11, b"[2.0]")]) == 2
    assert store.write("w:1", [("a", 12, b'["x"]')]) == 1
    hits = store.read([("w:1", "a"), ("v:1", "b"), ("v:1", "zz"), ("v:1", "a"), ("nope", "a")])
    assert hits == [(12, b'["x"]'), (11, b"[2.0]"), None, (10, b"[1.0]"), None]


def test_empty_read_and_write(store: OnlineStore) -> None:
    assert store.read([]) == []
    assert store.write("v:1", []) == 0
    assert store.count("v:1") == 0


def test_newer_rows_win_and_late_older_rows_are_ignored(store: OnlineStore) -> None:
    store.write("v", [("k", 100, b"first")])
    store.write("v", [("k", 50, b"late, older")])
    assert store.read([("v", "k")]) == [(100, b"first")]
    store.write("v", [("k", 100, b"same time replaces")])
    assert store.read([("v", "k")]) == [(100, b"same time replaces")]
    store.write("v", [("k", 200, b"newer"), ("k", 150, b"older in the same batch")])
    assert store.read([("v", "k")]) == [(200, b"newer")]


def test_negative_and_large_times(store: OnlineStore) -> None:
    store.write("v", [("old", -1_000_000, b"1969"), ("far", 2**62, b"future")])
    assert store.read([("v", "old"), ("v", "far")]) == [(-1_000_000, b"1969"), (2**62, b"future")]


def test_count_and_drop_are_per_namespace(store: OnlineStore) -> None:
    store.write("v:1", [(str(i), i, b"x") for i in range(25)])
    store.write("v:2", [("0", 0, b"y")])
    assert store.count("v:1") == 25
    store.drop("v:1")
    assert store.count("v:1") == 0
    assert store.read([("v:1", "0"), ("v:2", "0")]) == [None, (0, b"y")]


def test_a_failing_batch_writes_nothing(store: OnlineStore) -> None:
    class Broken:
        def __bytes__(self) -> bytes:
            raise ValueError("cannot encode")

    store.write("v", [("a", 1, b"kept")])
    with pytest.raises(ValueError, match="cannot encode"):
        store.write("v", [("a", 2, b"new"), ("b", 2, Broken())])  # type: ignore[list-item]
    assert store.read([("v", "a"), ("v", "b")]) == [(1, b"kept"), None]


def test_many_keys_in_one_read(store: OnlineStore) -> None:
    store.write("v", [(f"k{i}", i, str(i).encode()) for i in range(1000)])
    keys = [("v", f"k{i}") for i in range(0, 1200, 3)]
    hits = store.read(keys)
    assert hits == [(i, str(i).encode()) if i < 1000 else None for i in range(0, 1200, 3)]


def test_reads_past_sqlites_parameter_limit(store: OnlineStore) -> None:
    store.write("a", [(str(i), i, b"a") for i in range(0, 40_000, 1000)])
    store.write("b", [("7", 7, b"b")])
    keys = [("a", str(i)) for i in range(40_000)] + [("b", "7")]
    hits = store.read(keys)
    assert len(hits) == 40_001 and hits[-1] == (7, b"b")
    assert [i for i, h in enumerate(hits[:-1]) if h is not None] == list(range(0, 40_000, 1000))


def test_concurrent_writers_and_readers(store: OnlineStore) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for t in range(20):
                store.write("v", [(f"w{n}", t, f"{n}:{t}".encode())])
                store.read([("v", f"w{n}")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.read([("v", f"w{n}") for n in range(4)]) == [
        (19, f"{n}:19".encode()) for n in range(4)
    ]


keys = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=20,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(keys, st.integers(-(2**50), 2**50), st.binary(max_size=40)), max_size=30
    )
)
def test_latest_row_per_key_like_a_dict(
    store: OnlineStore, rows: list[tuple[str, int, bytes]]
) -> None:
    ns = f"h{abs(hash(tuple(rows)))}"
    expected: dict[str, tuple[int, bytes]] = {}
    for key, ts, payload in rows:
        if key not in expected or expected[key][0] <= ts:
            expected[key] = (ts, payload)
    store.write(ns, rows)
    wanted = [*sorted(expected), "never written"]
    assert store.read([(ns, k) for k in wanted]) == [expected.get(k) for k in wanted]
    assert store.count(ns) == len(expected)


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="online store URI 'kafka://x'"):
        open_online_store("kafka://x")
