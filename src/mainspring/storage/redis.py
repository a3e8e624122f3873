"""The Redis online store (redis-py, extra ``redis``): one string per (namespace, key).

A value is ``b"<event time in µs>:" + payload``. Reads are one ``MGET``; a write batch is one Lua
script, so it is atomic and keeps the newer row per key. Each namespace also keeps a set of its
keys, for counting and dropping.

Reads skip redis-py's client layer: each thread keeps one connection of its own
(:mod:`mainspring.storage.redisreads`) and sends the ``MGET`` on it directly. The client layer
costs, per command, a pool checkout and release (two lock round trips and a ``poll`` of the
socket for stale data), retry closures and metric records: more Python work than the read
itself, and the source of most of its latency tail. With ``hiredis`` installed (in the ``redis``
extra) the connection is a lean socket whose replies are parsed in C. The per-namespace key
prefixes are built once, so a read allocates little beyond the keys and the reply.

A server on the same machine can be reached over its unix-domain socket (redis-server's
``unixsocket``): ``redis+unix:///path/redis.sock?db=0`` (or redis-py's ``unix://`` form), which
skips the TCP stack on both sides.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from mainspring.errors import MissingDependencyError, StorageError
from mainspring.storage.base import OnlineHit, OnlineRow
from mainspring.storage.redisreads import ClientConnection, LeanConnection

#: KEYS: the key set, then the row keys; ARGV: pairs of (event time, value) per row key.
_WRITE = """
local n = #KEYS - 1
for i = 1, n do
    local key = KEYS[i + 1]
    local ts = tonumber(ARGV[2 * i - 1])
    local current = redis.call('GET', key)
    local keep = false
    if current then
        local current_ts = tonumber(string.match(current, '^(%-?%d+):'))
        keep = current_ts ~= nil and current_ts > ts
    end
    if not keep then
        redis.call('SET', key, ARGV[2 * i])
        redis.call('SADD', KEYS[1], key)
    end
end
return n
"""

#: Rows per Lua call would be unbounded; Redis handles large argument lists, but keep it sane.
MAX_BATCH = 50_000


class RedisOnlineStore:
    """An :class:`~mainspring.storage.base.OnlineStore` on Redis (``redis://host:port/db``, or
    ``redis+unix:///path/redis.sock?db=N`` over a unix-domain socket)."""

    def __init__(self, url: str, *, prefix: str = "mainspring:online:") -> None:
        try:
            import redis
        except ImportError:
            raise MissingDependencyError(
                "redis", extra="redis", purpose="Redis online stores"
            ) from None
        self.url = url
        self.prefix = prefix
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        #: errors after which a connection is reopened once (e.g. the server restarted)
        self._broken: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
        try:
            self._client: Any = redis.Redis.from_url(client_url(url))
            self._script: Any = self._client.register_script(_WRITE)
        except (ValueError, *self._errors) as exc:
            raise StorageError(f"online store {url} cannot be opened: {exc}") from exc
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._prefixes: dict[str, str] = {}
        # a forked child must not share the parent's sockets: it opens its own
        os.register_at_fork(after_in_child=functools.partial(_forget_in_child, weakref.ref(self)))

    def _forget(self) -> None:
        self._local = threading.local()
        self._opened = []
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        """This thread's own reading connection (opened on first use)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pool = self._client.connection_pool
            if LeanConnection.serves(pool.connection_class, pool.connection_kwargs):
                connection = LeanConnection(pool.connection_kwargs)
            else:
                connection = ClientConnection(pool.connection_class(**pool.connection_kwargs))
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    def _key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}{namespace}\x1e{key}"

    def _set(self, namespace: str) -> str:
        return f"{self.prefix}{namespace}\x1d"

    def write(self, namespace: str, rows: Sequence[OnlineRow]) -> int:
        if len(rows) > MAX_BATCH:
            raise StorageError(
                f"a batch of {len(rows)} rows is over the Redis online store's limit of "
                f"{MAX_BATCH}; write smaller batches"
            )
        keys = [self._set(namespace)]
        args: list[bytes | int] = []
        for key, ts, payload in rows:
            ts = int(ts)
            keys.append(self._key(namespace, str(key)))
            args.append(ts)
            args.append(b"%d:" % ts + bytes(payload))
        if not rows:
            return 0
        try:
            self._script(keys=keys, args=args)
        except self._errors as exc:
            raise StorageError(f"online store {self.url} refused a write: {exc}") from exc
        return len(rows)

    def read(self, keys: Sequence[tuple[str, str]]) -> list[OnlineHit]:
        if not keys:
            return []
        prefixes = self._prefixes
        try:
            names = [prefixes[ns] + key for ns, key in keys]
        except KeyError:
            for ns, _ in keys:
                prefixes.setdefault(ns, self._key(ns, ""))
            names = [prefixes[ns] + key for ns, key in keys]
        connection = self._connection()
        try:
            command = ["MGET", *names]
            try:
                values = connection.call(command)
            except self._broken:  # a stale connection: reopen it, once
                connection.disconnect()
                values = connection.call(command)
        except self._errors as exc:
            raise StorageError(f"online store {self.url} failed a read: {exc}") from exc
        out: list[OnlineHit] = []
        for value in values:
            if value is None:
                out.append(None)
            else:
                ts, _, payload = value.partition(b":")
                out.append((int(ts), payload))
        return out

    def count(self, namespace: str) -> int:
        try:
            return int(self._client.scard(self._set(namespace)))
        except self._errors as exc:
            raise StorageError(f"online store {self.url} failed: {exc}") from exc

    def drop(self, namespace: str) -> None:
        members = self._set(namespace)
        try:
            keys = list(self._client.smembers(members))
            pipe = self._client.pipeline(transaction=True)
            for start in range(0, len(keys), 1000):
                pipe.delete(*keys[start : start + 1000])
            pipe.delete(members)
            pipe.execute()
        except self._errors as exc:
            raise StorageError(f"online store {self.url} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.disconnect()
        self._client.close()


def client_url(url: str) -> str:
    """The URL redis-py takes: ``redis+unix:///path?db=N`` becomes ``unix:///path?db=N``.

    >>> client_url("redis+unix:///run/redis.sock?db=2")
    'unix:///run/redis.sock?db=2'
    >>> client_url("redis://127.0.0.1:6379/0")
    'redis://127.0.0.1:6379/0'
    """
    if url.startswith("redis+unix://"):
        return "unix://" + url[len("redis+unix://") :]
    return url


def _forget_in_child(store: weakref.ref[RedisOnlineStore]) -> None:
    alive = store()
    if alive is not None:
        alive._forget()
