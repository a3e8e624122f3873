"""Ids: UUIDv7, unique across threads and across a fork (random bits are drawn in advance)."""

from __future__ import annotations

import os
import threading
import uuid

from mainspring.records import new_id


def test_ids_are_uuid7_and_unique_across_threads() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        made[i].extend(new_id() for _ in range(3000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in made for i in ids]
    assert len(set(every)) == len(every) == 12_000
    assert {uuid.UUID(i).version for i in every} == {7}


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the parent has drawn random bytes that a child would otherwise share
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.close(read)
        os.write(write, "\n".join(new_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    parent = [new_id() for _ in range(100)]
    with os.fdopen(read) as pipe:
        theirs = pipe.read().split("\n")
    os.waitpid(child, 0)
    assert len(theirs) == 100
    # same milliseconds are likely: only the random bits can tell the ids apart
    assert not {i[14:] for i in parent} & {i[14:] for i in theirs}
