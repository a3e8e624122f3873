"""Progress bars for long feature jobs (rich), or nothing when not asked for."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self


class Steps:
    """A rich progress bar over ``total`` steps when ``enabled``; a no-op otherwise."""

    def __init__(self, enabled: bool, total: int, description: str = "features") -> None:
        self._progress: Any = None
        self._task: Any = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description:<32}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
            )
            self._task = self._progress.add_task(description, total=total)

    def advance(self, description: str, by: int = 1) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=description, advance=by)

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
