"""Query parameters of the UI's pages, parsed by hand so that every mistake names its field.

Browsers send what forms hold: empty strings for blank boxes, ``datetime-local`` times without an
offset (taken as UTC, as the pages say). Anything else that does not parse is an
``InvalidInputError`` naming the field, which the UI shows as a 422 page.

>>> f = DecisionFilter.parse({"deployment": "credit", "review_required": "yes",
...                           "since": "2026-03-01", "model": "credit-risk/3"})
>>> f.deployment, f.review_required, f.since.isoformat(), f.model, f.version
('credit', True, '2026-03-01T00:00:00+00:00', 'credit-risk', 3)
>>> DecisionFilter.parse({"version": "x"})
Traceback (most recent call last):
...
mainspring.errors.InvalidInputError: version must be a whole number of at least 1, not 'x'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Generic, TypeVar
from urllib.parse import urlencode

from mainspring.errors import InvalidInputError

T = TypeVar("T")
MAX_TEXT = 128
MAX_INT = 2**63 - 1
YES = {"yes", "true", "1", "on"}
NO = {"no", "false", "0", "off"}


def text(params: Mapping[str, str], name: str, limit: int = MAX_TEXT) -> str | None:
    """A text parameter; blank means not given."""
    value = params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > limit:
        raise InvalidInputError(f"{name} is longer than {limit} characters", field=name)
    return value.strip()


def integer(
    params: Mapping[str, str], name: str, *, default: int | None = None, high: int = MAX_INT
) -> int | None:
    """A whole number from 1 to ``high``; blank means ``default``."""
    value = params.get(name)
    if value is None or not value.strip():
        return default
    raw = value.strip()
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= high:
        bound = f"of at least 1 and at most {high}" if high < MAX_INT else "of at least 1"
        raise InvalidInputError(
            f"{name} must be a whole number {bound}, not {value[:40]!r}", field=name
        )
    return int(raw)


def moment(params: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 time or date; without an offset it is UTC."""
    value = params.get(name)
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"{name} must be an ISO 8601 time such as 2026-03-01T09:30 (UTC) or "
            f"2026-03-01T09:30+01:00, not {value[:40]!r}",
            field=name,
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def flag(params: Mapping[str, str], name: str) -> bool | None:
    """yes/no (also true/false, 1/0); blank means either."""
    value = params.get(name)
    if value is None or not value.strip():
        return None
    low = value.strip().lower()
    if low in YES:
        return True
    if low in NO:
        return False
    raise InvalidInputError(f"{name} must be yes or no, not {value[:40]!r}", field=name)


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """What the decision explorer shows: every field optional; ``before`` is the page cursor
    (the chain position to list below)."""

    deployment: str | None = None
    decision: str | None = None
    review_required: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    version: int | None = None
    before: int | None = None
    limit: int = 50

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> DecisionFilter:
        model = text(params, "model")
        version = integer(params, "version")
        if model is not None and "/" in model:
            name, _, number = model.rpartition("/")
            if not name or not number.isdigit() or int(number) < 1:
                raise InvalidInputError(
                    f"model must be NAME or NAME/VERSION, not {model[:40]!r}", field="model"
                )
            if version is not None and version != int(number):
                raise InvalidInputError(
                    f"model names version {number} and version says {version}: give one",
                    field="version",
                )
            model, version = name, int(number)
        if version is not None and model is None:
            raise InvalidInputError("a version needs the model it belongs to", field="model")
        since, until = moment(params, "since"), moment(params, "until")
        if since is not None and until is not None and until <= since:
            raise InvalidInputError("until must be later than since", field="until")
        return cls(
            deployment=text(params, "deployment"),
            decision=text(params, "decision"),
            review_required=flag(params, "review_required"),
            since=since,
            until=until,
            model=model,
            version=version,
            before=integer(params, "before"),
            limit=integer(params, "limit", default=50, high=500) or 50,
        )

    def query(self, **changes: object) -> str:
        """The query string of this filter with ``changes`` (for links: the next page)."""
        values: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        if values.get("model") is not None and values.get("version") is not None:
            values["model"] = f"{values['model']}/{values['version']}"
        values["version"] = None
        if values.get("limit") == 50:
            values["limit"] = None
        out: dict[str, str] = {}
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool):
                out[key] = "yes" if value else "no"
            elif isinstance(value, datetime):
                out[key] = value.isoformat()
            else:
                out[key] = str(value)
        return urlencode(out)

    def form_value(self, name: str) -> str:
        """The text a filter box shows for ``name``."""
        if name == "model" and self.model is not None:
            return self.model if self.version is None else f"{self.model}/{self.version}"
        value = getattr(self, name)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%dT%H:%M:%S")
        return str(value)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name != "limit")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list that is all in memory: ``number`` counts from 1."""

    items: Sequence[T]
    number: int
    size: int
    total: int
    param: str = "page"

    @classmethod
    def of(
        cls, items: Sequence[T], params: Mapping[str, str], size: int = 25, param: str = "page"
    ) -> Page[T]:
        """The page of ``items`` that query parameter ``param`` asks for."""
        number = integer(params, param, default=1) or 1
        pages = max(1, -(-len(items) // size))
        if number > pages:
            raise InvalidInputError(
                f"{param} {number} is past the last page ({pages})", field=param
            )
        start = (number - 1) * size
        return cls(items[start : start + size], number, size, len(items), param)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None
