"""The Redis online store's own reading connections: one per thread, reopened when dropped."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mainspring.errors import StorageError
from mainspring.storage.redis import RedisOnlineStore

pytestmark = pytest.mark.service


def test_reads_survive_dropped_connections(redis_url: str) -> None:
    import redis

    store = RedisOnlineStore(redis_url)
    admin = redis.Redis.from_url(redis_url)
    try:
        store.write("v", [("a", 1, b"x")])
        assert store.read([("v", "a")]) == [(1, b"x")]
        admin.client_kill_filter(_type="normal", skipme=True)  # the server drops the others
        assert store.read([("v", "a"), ("v", "b")]) == [(1, b"x"), None]
    finally:
        admin.close()
        store.close()


def test_each_thread_reads_on_its_own_connection(redis_url: str) -> None:
    import redis

    store = RedisOnlineStore(redis_url)
    admin = redis.Redis.from_url(redis_url)
    try:
        store.write("v", [(str(i), i, b"%d" % i) for i in range(50)])
        failures: list[str] = []

        def reader(offset: int) -> None:
            for i in range(200):
                key = str((offset + i) % 50)
                if store.read([("v", key)]) != [(int(key), key.encode())]:
                    failures.append(key)

        threads = [threading.Thread(target=reader, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        # 4 reading threads, the client's pool (the write), this admin connection
        assert len(admin.client_list()) == 6
    finally:
        store.close()
    for _ in range(200):  # close() closed the readers too (the server notices soon after)
        if len(admin.client_list()) == 1:
            break
        time.sleep(0.01)
    assert len(admin.client_list()) == 1
    admin.close()
    with pytest.raises(StorageError, match="failed a read"):
        RedisOnlineStore("redis://127.0.0.1:1/0").read([("v", "a")])


def test_a_forked_child_reads_on_its_own_connection(redis_url: str) -> None:
    import os

    store = RedisOnlineStore(redis_url)
    try:
        store.write("v", [(str(i), i, b"%d" % i) for i in range(200)])
        assert store.read([("v", "1")]) == [(1, b"1")]  # the parent's connection is open
        children = []
        for _ in range(2):
            reader, writer = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: read many keys while the parent does too
                ok = all(store.read([("v", str(i))]) == [(i, b"%d" % i)] for i in range(200))
                os.write(writer, b"ok" if ok else b"no")
                os._exit(0)
            os.close(writer)
            children.append((pid, reader))
        assert all(store.read([("v", str(i))]) == [(i, b"%d" % i)] for i in range(200))
        for pid, reader in children:
            assert os.read(reader, 2) == b"ok"
            os.close(reader)
            os.waitpid(pid, 0)
    finally:
        store.close()


def test_the_unix_socket_reaches_the_same_server(redis_url: str, redis_unix_url: str) -> None:
    from mainspring.storage import open_online_store

    over_tcp = RedisOnlineStore(redis_url)
    plain_unix = redis_unix_url.replace("redis+unix://", "unix://")
    stores = [open_online_store(redis_unix_url), open_online_store(plain_unix)]
    try:
        over_tcp.write("v", [("a", 5, b"tcp")])
        for store in stores:
            assert store.url.endswith("redis.sock?db=0")
            assert store.read([("v", "a"), ("v", "b")]) == [(5, b"tcp"), None]
        stores[0].write("v", [("b", 6, b"unix")])
        assert over_tcp.read([("v", "b")]) == [(6, b"unix")]
        with pytest.raises(StorageError, match="failed a read"):
            broken = RedisOnlineStore("redis+unix:///nonexistent/redis.sock?db=0")
            try:
                broken.read([("v", "a")])
            finally:
                broken.close()
    finally:
        over_tcp.close()
        for store in stores:
            store.close()


def test_reads_select_the_database_of_the_url(redis_server: Any) -> None:
    redis_server.flush()
    zero, one = RedisOnlineStore(redis_server.url(0)), RedisOnlineStore(redis_server.unix_url(1))
    one_over_tcp = RedisOnlineStore(redis_server.url(1))
    try:
        one.write("v", [("a", 1, b"db1")])
        assert one.read([("v", "a")]) == [(1, b"db1")]
        assert zero.read([("v", "a")]) == [None]
        assert one_over_tcp.read([("v", "a")]) == [(1, b"db1")]
    finally:
        for store in (zero, one, one_over_tcp):
            store.close()


def test_reads_authenticate_with_the_password_of_the_url(durable_redis_server: Any) -> None:
    import redis

    admin = redis.Redis.from_url(durable_redis_server.url())
    admin.config_set("requirepass", "s3cret")
    admin.close()
    url = durable_redis_server.url().replace("redis://", "redis://:s3cret@")
    store = RedisOnlineStore(url)
    try:
        store.write("v", [("a", 1, b"x")])
        assert store.read([("v", "a")]) == [(1, b"x")]
    finally:
        store.close()
    wrong = RedisOnlineStore(url.replace("s3cret", "wrong"))
    try:
        with pytest.raises(StorageError, match="failed a read"):
            wrong.read([("v", "a")])
    finally:
        wrong.close()


def test_what_the_lean_connection_does_not_speak_goes_through_redis_py(redis_url: str) -> None:
    import redis.connection

    from mainspring.storage.redisreads import LeanConnection

    plain, unix = redis.connection.Connection, redis.connection.UnixDomainSocketConnection
    assert LeanConnection.serves(plain, {"host": "h"})
    assert LeanConnection.serves(unix, {"path": "/p"})
    assert not LeanConnection.serves(redis.connection.SSLConnection, {"host": "h"})
    assert not LeanConnection.serves(plain, {"host": "h", "protocol": 3})
    store = RedisOnlineStore(redis_url + "?protocol=3")  # RESP3: redis-py's connection reads
    try:
        store.write("v", [("a", 1, b"x")])
        assert store.read([("v", "a"), ("v", "b")]) == [(1, b"x"), None]
    finally:
        store.close()
