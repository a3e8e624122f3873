"""The Redis side of the Redis Streams event log (see :mod:`mainspring.storage.redisstreams`):
redis-py imported on first use, its errors as :class:`~mainspring.errors.StorageError`, and the
options a ``redis+streams://`` URI may carry.

>>> streams_url_options("redis+streams://127.0.0.1:6379/0?prefix=app:&session_timeout_s=5")
('redis://127.0.0.1:6379/0', {'prefix': 'app:', 'session_timeout_s': 5.0})
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from mainspring.errors import ConfigError, MissingDependencyError, StorageError


def redis_module() -> Any:
    """redis-py, or :class:`MissingDependencyError` with the extra that installs it."""
    try:
        import redis
    except ImportError:
        raise MissingDependencyError(
            "redis", extra="redis", purpose="Redis Streams event logs"
        ) from None
    return redis


class RedisGuard:
    """Turns Redis errors into ``StorageError`` naming what failed and the server (``where``):
    ``lost`` are the errors of a connection that failed, ``errors`` all of redis-py's."""

    def __init__(
        self,
        what: str,
        where: str,
        lost: tuple[type[Exception], ...],
        errors: tuple[type[Exception], ...],
    ) -> None:
        self.what, self.where, self.lost, self.errors = what, where, lost, errors

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if isinstance(exc, self.lost):
            raise StorageError(
                f"cannot {self.what}: Redis at {self.where} is not reachable ({exc}); is it up?"
            ) from exc
        if isinstance(exc, self.errors):
            raise StorageError(f"cannot {self.what}: Redis at {self.where}: {exc}") from exc


_OPTIONS = {
    "prefix": str,
    "session_timeout_s": float,
    "delivery_timeout_s": float,
    "dedupe_window_s": float,
    "socket_timeout_s": float,
}


def streams_url_options(url: str) -> tuple[str, dict[str, Any]]:
    """The Redis URI in ``redis+streams://host:port/db?options`` (``rediss+streams://`` for
    TLS) and its options ``prefix``, ``session_timeout_s``, ``delivery_timeout_s``,
    ``dedupe_window_s`` and ``socket_timeout_s``, typed."""
    base, _, query = url.partition("?")
    scheme, sep, rest = base.partition("://")
    if scheme not in {"redis+streams", "rediss+streams"} or not sep or not rest.strip("/"):
        raise ConfigError(
            f"event log URI {url!r} names no Redis server: redis+streams://host:port/db",
            key="events",
        )
    options = dict(parse_qsl(query))
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ConfigError(
            f"event log URI {url!r} has unknown options {unknown}; known: {', '.join(_OPTIONS)}",
            key="events",
        )
    kwargs: dict[str, Any] = {}
    for name, value in options.items():
        try:
            kwargs[name] = _OPTIONS[name](value)
        except ValueError:
            raise ConfigError(
                f"{name} in {url!r} must be a number of seconds", key="events"
            ) from None
    return f"{scheme.removesuffix('+streams')}://{rest}", kwargs
