"""What every command shares: the project, who is acting, output, and error-to-exit-code mapping."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from mainspring import errors
from mainspring.access import require
from mainspring.project import Project
from mainspring.records import Principal, Role

#: Exit codes by error class (first match wins); 2 is click's own usage error.
EXIT_CODES: tuple[tuple[type[errors.MainspringError], int], ...] = (
    (errors.InvalidInputError, 2),
    (errors.NotFoundError, 3),
    (errors.AccessError, 4),
    (errors.GovernanceError, 5),
    (errors.ConflictError, 5),
    (errors.IntegrityError, 6),
    (errors.StorageError, 7),
    (errors.ConfigError, 8),
    (errors.MissingDependencyError, 9),
)


def fail(exc: errors.MainspringError) -> NoReturn:
    """Print a one-line error and exit with the code of its class."""
    click.echo(f"error: {exc}", err=True)
    code = next((c for cls, c in EXIT_CODES if isinstance(exc, cls)), 1)
    sys.exit(code)


@dataclass
class Cli:
    """State shared by the commands of one invocation."""

    directory: Path
    as_user: str | None
    token: str | None
    json_output: bool
    _project: Project | None = None

    @property
    def project(self) -> Project:
        if self._project is None:
            self._project = Project.open(self.directory)
        return self._project

    def principal(self, operation: str) -> Principal:
        """Who is acting, checked for ``operation``. With tokens configured, the token decides."""
        project = self.project
        if project.tokens.enabled():
            if self.as_user:
                raise errors.AuthenticationError(
                    "--as is not allowed once tokens exist: set MAINSPRING_TOKEN instead"
                )
            principal = project.tokens.authenticate(self.token)
        else:
            name = self.as_user or os.environ.get("MAINSPRING_USER") or getpass.getuser()
            principal = Principal(name, frozenset(Role))
        require(principal, operation)
        return principal

    def emit(self, data: Any, human: Callable[[], None]) -> None:
        """Print ``data`` as JSON with ``--json``, else run ``human`` to print it for people."""
        if self.json_output:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            human()

    def close(self) -> None:
        if self._project is not None:
            self._project.close()


@contextmanager
def handled() -> Iterator[None]:
    """Turn Mainspring errors into a one-line message and an exit code."""
    try:
        yield
    except errors.MainspringError as exc:
        fail(exc)


pass_cli = click.make_pass_decorator(Cli)
