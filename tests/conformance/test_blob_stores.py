"""One suite over every BlobStore: in memory, a local directory, and S3 (a real moto server)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import ConfigError, InvalidInputError, NotFoundError
from mainspring.storage import BlobStore, open_blob_store
from mainspring.storage.blobs import FsspecBlobStore
from mainspring.storage.memory import MemoryBlobStore

ALL = ["memory", "file", pytest.param("s3", marks=pytest.mark.service)]
FSSPEC = ["file", pytest.param("s3", marks=pytest.mark.service)]

INVALID_KEYS = ["../x", "a/../b", "/abs", "a//b", "", "a/", "./a", "."]


@pytest.fixture(params=ALL)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """A fresh, empty store of the backend named by the parameter."""
    if request.param == "memory":
        yield MemoryBlobStore()
    elif request.param == "file":
        yield FsspecBlobStore(f"file://{tmp_path / 'blobs'}")
    else:
        location = request.getfixturevalue("s3_url")
        yield FsspecBlobStore(location.url, location.storage_options)


def is_s3(store: BlobStore) -> bool:
    return store.url.startswith("s3://")


def test_is_a_blob_store(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)
    assert store.url


def test_put_then_get(store: BlobStore) -> None:
    store.put("models/credit/1/model.txt", b"tree 0")
    assert store.get("models/credit/1/model.txt") == b"tree 0"
    assert store.exists("models/credit/1/model.txt")


def test_overwrite_replaces_the_content(store: BlobStore) -> None:
    store.put("k", b"first, and longer than the second")
    store.put("k", b"second")
    assert store.get("k") == b"second"
    assert list(store.list()) == ["k"]


def test_empty_blob(store: BlobStore) -> None:
    store.put("empty", b"")
    assert store.exists("empty")
    assert store.get("empty") == b""


def test_missing_key(store: BlobStore) -> None:
    assert not store.exists("nope/here")
    with pytest.raises(NotFoundError) as info:
        store.get("nope/here")
    assert info.value.kind == "blob"
    assert info.value.name == "nope/here"
    store.delete("nope/here")  # deleting what is not there is not an error


def test_delete(store: BlobStore) -> None:
    store.put("a/1", b"1")
    store.put("a/2", b"2")
    store.delete("a/1")
    assert not store.exists("a/1")
    with pytest.raises(NotFoundError):
        store.get("a/1")
    assert list(store.list()) == ["a/2"]
    store.delete("a/1")


def test_a_prefix_of_keys_is_not_a_key(store: BlobStore) -> None:
    store.put("dir/sub/blob", b"x")
    for key in ("dir", "dir/sub"):
        assert not store.exists(key)
        with pytest.raises(NotFoundError):
            store.get(key)
        store.delete(key)
    assert store.get("dir/sub/blob") == b"x"


def test_list_with_prefixes(store: BlobStore) -> None:
    assert list(store.list()) == []
    keys = ["b/c/4", "a/2", "top", "a/1", "ab/3", "a/deeper/5"]
    for key in keys:
        store.put(key, key.encode())
    assert list(store.list()) == sorted(keys)
    assert list(store.list("a/")) == ["a/1", "a/2", "a/deeper/5"]
    assert list(store.list("a")) == ["a/1", "a/2", "a/deeper/5", "ab/3"]
    assert list(store.list("b/c")) == ["b/c/4"]
    assert list(store.list("top")) == ["top"]
    assert list(store.list("zzz")) == []


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused(store: BlobStore, key: str) -> None:
    operations: list[Any] = [
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ]
    for operation in operations:
        with pytest.raises(InvalidInputError) as info:
            operation()
        assert info.value.field == "key"
    assert list(store.list()) == []


def test_binary_round_trip(store: BlobStore) -> None:
    @settings(max_examples=10 if is_s3(store) else 40, deadline=None, database=None)
    @given(data=st.binary(max_size=2048), name=st.sampled_from(["bin", "dir/bin", "a/b/c.bin"]))
    def round_trip(data: bytes, name: str) -> None:
        store.put(name, data)
        assert store.get(name) == data

    round_trip()


def test_large_blob(store: BlobStore) -> None:
    data = os.urandom(5 * 1024 * 1024)
    store.put("large/blob.bin", data)
    assert store.get("large/blob.bin") == data


def test_bytes_like_input_is_copied(store: BlobStore) -> None:
    buffer = bytearray(b"abc")
    store.put("k", buffer)  # type: ignore[arg-type]  # bytes-like is accepted
    buffer[:] = b"xyz"
    assert store.get("k") == b"abc"


@pytest.mark.parametrize("store", FSSPEC, indirect=True)
def test_list_excludes_temporary_files(store: FsspecBlobStore) -> None:
    store.put("a/kept", b"1")
    # a writer that died between writing its temporary file and renaming it into place
    store.fs.pipe_file(f"{store.root}/a/.tmp-0123456789abcdef", b"partial")
    store.fs.invalidate_cache()
    assert list(store.list()) == ["a/kept"]
    assert list(store.list("a/")) == ["a/kept"]


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = FsspecBlobStore(f"file://{tmp_path}")
    for i in range(5):
        store.put(f"x/{i % 2}", str(i).encode())
    found = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert found == ["x/0", "x/1"]


def test_file_store_creates_its_directory(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    store = FsspecBlobStore(f"file://{root}")
    assert root.is_dir()
    assert list(store.list()) == []


def test_stores_under_sibling_prefixes_do_not_see_each_other(tmp_path: Path) -> None:
    first = FsspecBlobStore(f"file://{tmp_path}/p")
    second = FsspecBlobStore(f"file://{tmp_path}/p2")
    first.put("k", b"1")
    second.put("k2", b"2")
    assert list(first.list()) == ["k"]
    assert list(second.list()) == ["k2"]


@pytest.mark.service
def test_s3_stores_under_sibling_prefixes_do_not_see_each_other(s3_url: Any) -> None:
    first = FsspecBlobStore(s3_url.url, s3_url.storage_options)
    second = FsspecBlobStore(s3_url.url + "2", s3_url.storage_options)
    first.put("k", b"1")
    second.put("k2", b"2")
    assert list(first.list()) == ["k"]
    assert list(second.list()) == ["k2"]
    assert not first.exists("k2")


@pytest.mark.service
def test_s3_objects_land_in_the_bucket(s3_url: Any) -> None:
    store = FsspecBlobStore(s3_url.url + "/", s3_url.storage_options)
    store.put("m/1", b"payload")
    assert store.url == s3_url.url
    assert store.fs.cat_file(f"{s3_url.bucket}/{s3_url.prefix}/m/1") == b"payload"


# --- URI dispatch ----------------------------------------------------------------------------


def test_open_memory_blob_store() -> None:
    store = open_blob_store("memory://")
    assert isinstance(store, MemoryBlobStore)
    store.put("k", b"v")
    assert store.get("k") == b"v"


def test_open_file_blob_store(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}/artifacts")
    assert isinstance(store, FsspecBlobStore)
    store.put("a/b", b"v")
    assert (tmp_path / "artifacts" / "a" / "b").read_bytes() == b"v"


@pytest.mark.service
def test_open_s3_blob_store(s3_url: Any) -> None:
    store = open_blob_store(s3_url.url, s3_url.storage_options)
    assert isinstance(store, FsspecBlobStore)
    store.put("a/b", b"v")
    assert open_blob_store(s3_url.url, s3_url.storage_options).get("a/b") == b"v"


@pytest.mark.parametrize("url", ["ftp://host/dir", "gs://bucket/x", "nonsense", "mysql://db"])
def test_open_blob_store_refuses_unknown_schemes(url: str) -> None:
    with pytest.raises(ConfigError, match="unknown scheme") as info:
        open_blob_store(url)
    assert info.value.key == "artifacts"
