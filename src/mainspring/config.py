"""Settings: ``mainspring.yaml`` in the project directory, overridden by environment variables.

Settings are read once, at the edge (CLI, server start-up, ``Project.open``), into a frozen object;
nothing deeper reads the environment. Every backend is chosen by a URI.

Environment variables are ``MAINSPRING_`` plus the upper-cased key, with ``__`` between nested keys:
``MAINSPRING_METADATA=postgresql://...``, ``MAINSPRING_S3__ENDPOINT_URL=http://127.0.0.1:5000``.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     s = load_settings(d, environ={"MAINSPRING_ARTIFACTS": "s3://bucket/models"})
...     print(s.metadata.startswith("sqlite:///"), s.artifacts)
True s3://bucket/models
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from mainspring.errors import ConfigError

CONFIG_FILE = "mainspring.yaml"
STATE_DIR = ".mainspring"
ENV_PREFIX = "MAINSPRING_"


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Connection options for S3-compatible artifact stores."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Where the control-plane REST API listens."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: int = 512


AUDIT_TREATMENTS = ("drop", "hash")
AUDIT_DURABILITY = ("fsync", "process")
AUDIT_KEY_FILE = "audit.key"


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The decision log: personal fields (name → ``drop`` | ``hash``), durability (``fsync`` |
    ``process``), the HMAC key file for hashed fields (default ``.mainspring/audit.key``, created
    on first use) and the entity/context fields whose override rates are metered (``segments``).
    """

    personal: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    durability: str = "fsync"
    key_file: Path | None = None
    segments: tuple[str, ...] = ()


def _audit(raw: Any, root: Path) -> AuditSettings:
    if raw is None:
        return AuditSettings(key_file=root / STATE_DIR / AUDIT_KEY_FILE)
    if not isinstance(raw, Mapping):
        raise ConfigError("setting 'audit' must be a mapping", key="audit")
    known = ("personal", "durability", "key_file", "segments")
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"unknown setting 'audit.{key}'; known: {', '.join('audit.' + k for k in known)}",
                key=f"audit.{key}",
            )
    personal = raw.get("personal") or {}
    if not isinstance(personal, Mapping):
        raise ConfigError(
            "setting 'audit.personal' must map field names to drop or hash", key="audit.personal"
        )
    for name, how in personal.items():
        if how not in AUDIT_TREATMENTS:
            raise ConfigError(
                f"setting 'audit.personal.{name}' must be drop or hash, not {how!r}",
                key=f"audit.personal.{name}",
            )
    durability = raw.get("durability") or "fsync"
    if durability not in AUDIT_DURABILITY:
        raise ConfigError(
            f"setting 'audit.durability' must be fsync or process, not {durability!r}",
            key="audit.durability",
        )
    segments = raw.get("segments") or ()
    if isinstance(segments, str):
        segments = [s.strip() for s in segments.split(",") if s.strip()]
    if not isinstance(segments, list | tuple) or not all(isinstance(s, str) for s in segments):
        raise ConfigError(
            "setting 'audit.segments' must be a list of field names", key="audit.segments"
        )
    key_file = raw.get("key_file")
    if key_file is not None and not isinstance(key_file, str):
        raise ConfigError("setting 'audit.key_file' must be a path", key="audit.key_file")
    path = Path(key_file) if key_file else Path(STATE_DIR) / AUDIT_KEY_FILE
    return AuditSettings(
        personal=MappingProxyType({str(k): str(v) for k, v in personal.items()}),
        durability=str(durability),
        key_file=path if path.is_absolute() else (root / path),
        segments=tuple(segments),
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable about a project, parsed and validated."""

    project_dir: Path
    name: str
    metadata: str
    artifacts: str
    s3: S3Settings = field(default_factory=S3Settings)
    api: ApiSettings = field(default_factory=ApiSettings)
    #: The online feature store (``sqlite:///…``, ``redis://…``, ``redis+unix://…``, ``memory://``).
    online: str = ""
    #: The event log: ``sqlite:///path`` (embedded), ``kafka://host:port``,
    #: ``redis+streams://host:port/db`` or ``memory://``.
    events: str = "memory://"
    #: The decision log (personal data, durability).
    audit: AuditSettings = field(default_factory=AuditSettings)


_KNOWN: dict[str, Any] = {
    "name": str,
    "metadata": str,
    "artifacts": str,
    "online": str,
    "s3": {"endpoint_url": str, "region": str, "access_key_id": str, "secret_access_key": str},
    "api": {"host": str, "port": int, "max_upload_mb": int},
    "events": str,
    # parsed by _audit (personal names are free-form): only these come from the environment
    "audit": {"durability": str, "key_file": str, "segments": str, "personal": {}},
}


def _merge_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var in {
            "MAINSPRING_PROJECT",
            "MAINSPRING_TOKEN",
            "MAINSPRING_USER",
        }:
            continue
        path = var[len(ENV_PREFIX) :].lower().split("__")
        schema: Any = _KNOWN
        for part in path[:-1]:
            if not isinstance(schema, dict) or not isinstance(schema.get(part), dict):
                raise ConfigError(f"environment variable {var} names no setting", key=var)
            schema = schema[part]
        if (
            not isinstance(schema, dict)
            or path[-1] not in schema
            or isinstance(schema[path[-1]], dict)
        ):
            raise ConfigError(f"environment variable {var} names no setting", key=var)
        target = data
        for part in path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"setting {part!r} must be a mapping", key=part)
        target[path[-1]] = raw


def _typed(data: Mapping[str, Any], schema: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(
                f"unknown setting {where!r}; known: {', '.join(prefix + k for k in schema)}",
                key=where,
            )
        kind = schema[key]
        if isinstance(kind, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"setting {where!r} must be a mapping", key=where)
            out[key] = _typed(value, kind, where + ".")
        elif value is None:
            continue
        elif kind is int:
            # whole numbers only: from YAML an int, from the environment a string of digits
            try:
                if isinstance(value, bool) or not isinstance(value, int | str):
                    raise TypeError(value)
                out[key] = int(value)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"setting {where!r} must be an integer, not {value!r}", key=where
                ) from None
        else:
            if not isinstance(value, str | int | float):
                raise ConfigError(f"setting {where!r} must be a string", key=where)
            out[key] = str(value)
    return out


def _resolve_local(url: str, project_dir: Path) -> str:
    """Make relative ``sqlite:///`` and ``file://`` paths relative to the project directory."""
    if url.startswith("sqlite:///") and url != "sqlite://" and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and rel != ":memory:":
            return f"sqlite:///{(project_dir / rel).resolve()}"
    if url.startswith("file://") and not url.startswith("file:///"):
        return f"file://{(project_dir / url[len('file://') :]).resolve()}"
    if "://" not in url:
        return f"file://{(project_dir / url).resolve()}"
    return url


def load_settings(
    project_dir: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read ``mainspring.yaml`` (if any) from ``project_dir`` and apply environment overrides."""
    root = Path(project_dir).resolve()
    env = os.environ if environ is None else environ
    path = root / CONFIG_FILE
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}", key=str(path)) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of settings", key=str(path))
        data = dict(loaded or {})
    _merge_env(data, env)
    audit = _audit(data.pop("audit", None), root)
    typed = _typed(data, _KNOWN, "")
    state = root / STATE_DIR
    defaults = {
        "metadata": f"sqlite:///{state / 'metadata.db'}",
        "artifacts": f"file://{state / 'artifacts'}",
        "online": f"sqlite:///{state / 'online.db'}",
        "events": f"sqlite:///{state / 'events.db'}",
    }
    urls: dict[str, str] = {}
    for key, default in defaults.items():
        try:
            urls[key] = url = _resolve_local(typed.get(key, default), root)
        except (OSError, ValueError) as exc:  # a path the OS refuses, e.g. with a NUL byte
            raise ConfigError(f"setting {key!r} is not a usable path: {exc}", key=key) from None
        if "://" not in url:
            raise ConfigError(f"setting {key!r} must be a URI such as sqlite:///path", key=key)
    return Settings(
        project_dir=root,
        name=typed.get("name", root.name),
        metadata=urls["metadata"],
        artifacts=urls["artifacts"],
        s3=S3Settings(**typed.get("s3", {})),
        api=ApiSettings(**typed.get("api", {})),
        online=urls["online"],
        events=urls["events"],
        audit=audit,
    )
