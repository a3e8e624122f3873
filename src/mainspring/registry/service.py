"""The model registry: immutable, governed model versions with aliases, approvals and a history.

Every change (registration, alias move, approval step, rollback) commits in one transaction with
its entry in the hash-chained registry history, so the history is exactly the set of changes.
Artifacts are content-addressed blobs (``sha256/ab/abcd…``) verified against their digest on
every load.

:class:`Registry` is composed of one part per concern: reading (:mod:`.versions`), registration
(:mod:`.registration`), aliases (:mod:`.aliases`), approvals (:mod:`.approvals`) and global
importance with background samples (:mod:`.importance`).
"""

from __future__ import annotations

from mainspring.registry.aliases import Aliasing
from mainspring.registry.approvals import Approving
from mainspring.registry.importance import ImportanceRecords
from mainspring.registry.registration import Registration
from mainspring.registry.versions import CHAMPION, HISTORY_STREAM, LoadedVersion

__all__ = ["CHAMPION", "HISTORY_STREAM", "LoadedVersion", "Registry"]


class Registry(Registration, Aliasing, Approving, ImportanceRecords):
    """Governed model versions on a metadata store and a blob store.

    >>> from mainspring.storage.memory import MemoryBlobStore, memory_metadata
    >>> registry = Registry(memory_metadata(), MemoryBlobStore())
    >>> registry.list_models()
    []
    """
