"""``FsspecBlobStore``: artifacts on any fsspec file system: a local directory or S3.

``file:///abs/path`` needs nothing extra; ``s3://bucket/prefix`` needs ``mainspring[s3]``
(s3fs). Writes are atomic: a local write goes to a temporary file renamed into place, an S3 PUT is
atomic by itself.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import fsspec

from mainspring.errors import MissingDependencyError, NotFoundError, StorageError
from mainspring.storage.base import check_key


class FsspecBlobStore:
    """A :class:`~mainspring.storage.base.BlobStore` over an fsspec file system."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        if protocol in {"s3", "s3a"} and importlib.util.find_spec("s3fs") is None:
            raise MissingDependencyError("s3fs", extra="s3", purpose="S3 artifact stores")
        self.url = url.rstrip("/")
        self.protocol = protocol
        self.fs: Any
        self.fs, root = fsspec.core.url_to_fs(self.url, **dict(storage_options or {}))
        self.root = str(root).rstrip("/")
        if protocol == "file":
            self.fs.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self.url!r})"

    def _path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            if self.protocol == "file":
                target = Path(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.parent / f".tmp-{uuid.uuid4().hex}"
                with tmp.open("wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                tmp.replace(target)
            else:
                self.fs.pipe_file(path, bytes(data))
        except OSError as exc:
            raise StorageError(f"cannot write {key!r} to {self.url}: {exc}") from exc

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return bytes(self.fs.cat_file(path))
        except (FileNotFoundError, IsADirectoryError):  # a directory is a prefix, not a blob
            raise NotFoundError("blob", key, f"nothing is stored at {self.url}/{key}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {key!r} from {self.url}: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            return bool(self.fs.isfile(self._path(key)))
        except OSError as exc:
            raise StorageError(f"cannot reach {self.url}: {exc}") from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            if self.fs.isfile(path):
                self.fs.rm_file(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r} from {self.url}: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        try:
            if self.protocol != "file":
                self.fs.invalidate_cache()
            if not self.fs.exists(self.root):
                return iter(())
            found = self.fs.find(self.root)
        except OSError as exc:
            raise StorageError(f"cannot list {self.url}: {exc}") from exc
        start = len(self.root.lstrip("/")) + 1
        keys = []
        for path in found:
            key = str(path).lstrip("/")[start:]
            if key.startswith(prefix) and not key.rsplit("/", 1)[-1].startswith(".tmp-"):
                keys.append(key)
        return iter(sorted(keys))
