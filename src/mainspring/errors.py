"""Every error Mainspring raises on purpose, in one hierarchy.

```
MainspringError                 base: a message that says what went wrong and what to do
├── ConfigError                 mainspring.yaml or an environment variable holds a bad value
├── MissingDependencyError      an optional integration is not installed (names the extra)
├── InvalidInputError           a caller's value is wrong; ``field`` names it
│   ├── UnsupportedFormatError  a model file or object no flavor recognises
│   └── SignatureError          a signature that does not match the model or the data
├── NotFoundError               a named thing does not exist; ``kind`` and ``name`` say which
├── ConflictError               the request clashes with the current state (already exists, ...)
├── GovernanceError             a rule of the registry forbids it (unapproved champion, ...)
├── AccessError                 who you are or may do
│   ├── AuthenticationError     no credentials, or unknown ones
│   └── PermissionDeniedError   known principal, missing role, or four-eyes violation
├── IntegrityError              stored data does not match its digest or its hash chain
└── StorageError                a backend cannot be reached or refused the operation
```

Domain errors know nothing of HTTP or exit codes: only ``mainspring.api`` maps them to status
codes and only ``mainspring.cli`` to exit codes.
"""

from __future__ import annotations


class MainspringError(Exception):
    """Base class of every deliberate Mainspring error."""

    #: A short, stable identifier of the kind of problem (used in problem details).
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(MainspringError):
    """A configuration value is missing or malformed; ``key`` names it."""

    code = "config"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class MissingDependencyError(MainspringError):
    """An optional integration is needed but its package is not installed.

    >>> str(MissingDependencyError("lightgbm", extra="lightgbm", purpose="LightGBM models"))
    "LightGBM models need the lightgbm package: pip install 'mainspring[lightgbm]'"
    """

    code = "missing-dependency"

    def __init__(self, package: str, *, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} need the {package} package: pip install 'mainspring[{extra}]'")
        self.package = package
        self.extra = extra


class InvalidInputError(MainspringError):
    """A caller-supplied value is invalid; ``field`` names it (dotted path) when known."""

    code = "invalid-input"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnsupportedFormatError(InvalidInputError):
    """No model flavor recognises the given object or file."""

    code = "unsupported-format"


class SignatureError(InvalidInputError):
    """A signature does not fit the model or the data offered to it."""

    code = "signature-mismatch"


class NotFoundError(MainspringError):
    """A named thing does not exist.

    >>> str(NotFoundError("model", "credit"))
    "model 'credit' does not exist"
    """

    code = "not-found"

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        message = f"{kind} {name!r} does not exist"
        super().__init__(f"{message}; {hint}" if hint else message)
        self.kind = kind
        self.name = name


class ConflictError(MainspringError):
    """The request clashes with the current state."""

    code = "conflict"


class GovernanceError(MainspringError):
    """A registry rule forbids the change (for example an unapproved champion)."""

    code = "governance"


class AccessError(MainspringError):
    """Base of authentication and authorisation failures."""

    code = "access"


class AuthenticationError(AccessError):
    """No credentials were given, or they match no principal."""

    code = "unauthenticated"


class PermissionDeniedError(AccessError):
    """The principal is known but may not do this."""

    code = "forbidden"


class IntegrityError(MainspringError):
    """Stored data does not match its digest or its hash chain."""

    code = "integrity"


class StorageError(MainspringError):
    """A storage backend cannot be reached or refused the operation."""

    code = "storage"
