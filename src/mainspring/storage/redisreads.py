"""Reading connections of the Redis online store: one per thread, a command in, a reply out.

:class:`LeanConnection` does only what a read needs: it packs the command with
``hiredis.pack_command``, sends it with one ``sendall`` and parses the reply with a
``hiredis.Reader`` fed from a reused buffer. redis-py's connection does more per command
(its own packer, health and push-notification handling, several layers of calls), which is about
as much time as the round trip to a local server. The lean connection is used for plain TCP and
unix-domain sockets with RESP2 when hiredis is installed (the ``redis`` extra installs it);
otherwise (TLS, RESP3, no hiredis) :class:`ClientConnection` wraps redis-py's own.

Both raise redis-py's errors (``redis.ConnectionError`` when the connection breaks, so that the
store reopens it once, ``redis.ResponseError`` for an error reply).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

#: Bytes read from the socket per ``recv_into``.
BUFFER = 1 << 16


class ReadConnection(Protocol):
    def call(self, args: Sequence[Any]) -> Any:
        """Send one command (``args``: its name and arguments) and return its reply."""
        ...

    def disconnect(self) -> None: ...


class ClientConnection:
    """redis-py's own connection, for what the lean one does not speak (TLS, RESP3)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def call(self, args: Sequence[Any]) -> Any:
        self.connection.send_command(*args, check_health=False)
        return self.connection.read_response()

    def disconnect(self) -> None:
        self.connection.disconnect()


class LeanConnection:
    """A socket to the server (TCP or unix-domain) with replies parsed by hiredis."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        import hiredis
        import redis

        self._hiredis = hiredis
        self._redis = redis
        self.options = dict(options)
        self._sock: socket.socket | None = None
        self._reader: Any = None
        self._buffer = bytearray(BUFFER)

    @staticmethod
    def serves(connection_class: type, options: Mapping[str, Any]) -> bool:
        """Whether the lean connection can stand in for ``connection_class(**options)``."""
        try:
            import hiredis  # noqa: F401
            import redis.connection
        except ImportError:
            return False
        plain = connection_class in (
            redis.connection.Connection,
            redis.connection.UnixDomainSocketConnection,
        )
        return plain and options.get("protocol") in (None, 2, "2")

    def _connect(self) -> socket.socket:
        options = self.options
        timeout = options.get("socket_timeout")
        connect_timeout = options.get("socket_connect_timeout") or timeout
        try:
            if options.get("path"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(connect_timeout)
                    sock.connect(options["path"])
                except OSError:
                    sock.close()
                    raise
            else:
                address = (options.get("host", "localhost"), int(options.get("port", 6379)))
                sock = socket.create_connection(address, timeout=connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)
        except OSError as exc:
            raise self._redis.ConnectionError(f"cannot connect: {exc}") from exc
        self._sock = sock
        self._reader = self._hiredis.Reader()
        try:
            if options.get("password") is not None:
                user = options.get("username")
                self.call(["AUTH", *([user] if user else []), options["password"]])
            if int(options.get("db") or 0):
                self.call(["SELECT", int(options["db"])])
        except BaseException:
            self.disconnect()
            raise
        return sock

    def call(self, args: Sequence[Any]) -> Any:
        sock = self._sock if self._sock is not None else self._connect()
        reader, buffer = self._reader, self._buffer
        try:
            sock.sendall(self._hiredis.pack_command(tuple(args)))
            reply = False
            while reply is False:
                n = sock.recv_into(buffer)
                if not n:
                    raise ConnectionResetError("the server closed the connection")
                reader.feed(buffer, 0, n)
                reply = reader.gets()
        except OSError as exc:
            self.disconnect()
            raise self._redis.ConnectionError(str(exc)) from exc
        if isinstance(reply, self._hiredis.ReplyError):
            raise self._redis.ResponseError(str(reply))
        return reply

    def disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
