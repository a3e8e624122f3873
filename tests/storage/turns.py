"""Helpers for tests of hot writers' turns at SQLite's write lock (``storage.sql.WriterTurn``)."""

from __future__ import annotations

import os
import time

import pytest

from mainspring.storage import sql
from mainspring.storage.sql import SqlMetadataStore


def turn_is_free(store: SqlMetadataStore) -> bool:
    """Whether no hot writer holds the turn of ``store``'s file (asked on a descriptor of our
    own, as another process would)."""
    import fcntl

    fd = os.open(store.url.removeprefix("sqlite:///") + "-writers", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def recorded_naps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sleeps a writer takes between tries for SQLite's write lock from now on (each still
    sleeps): a writer woken by its turn takes none."""
    naps: list[float] = []

    class Clock:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            naps.append(seconds)
            time.sleep(seconds)

    monkeypatch.setattr(sql, "time", Clock)
    return naps
