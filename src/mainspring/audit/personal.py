"""Personal data in decisions: named fields dropped, or replaced by a keyed hash, before logging.

A plain SHA-256 of a national ID number or a phone number is no protection: the space of values is
small enough to hash every one. A keyed HMAC-SHA256 is: without the key nobody can test a guess,
yet the same value always maps to the same pseudonym, so records about one person still join.

>>> from datetime import UTC, datetime
>>> personal = PersonalData({"ssn": "drop", "email": "hash"}, key=b"k" * 32)
>>> d = Decision(id="d-1", deployment="credit", at=datetime(2026, 1, 2, tzinfo=UTC),
...     decision="approve", policy="credit@1",
...     entity={"customer": "c-1", "ssn": "123-45-6789"}, context={"email": "ann@example.com"})
>>> logged = personal.apply(d)
>>> "ssn" in logged.entity, logged.context["email"].startswith("hmac-sha256:")
(False, True)
>>> logged.context["email"] == personal.pseudonym("ann@example.com")
True
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mainspring.errors import InvalidInputError
from mainspring.records import Decision, FeatureValue
from mainspring.storage.chain import canonical_json

PREFIX = "hmac-sha256:"
MIN_KEY_BYTES = 16


class Treatment(enum.StrEnum):
    """What happens to a personal field before it is written."""

    DROP = "drop"
    HASH = "hash"


@dataclass(frozen=True, slots=True)
class PersonalData:
    """Which fields are personal (by name, in entity, context and features) and the HMAC key.

    Names match at any depth of ``entity`` and ``context`` (nested mappings and lists), and the
    names of feature values; a reason about a personal feature loses (or hashes) its value too.
    """

    fields: Mapping[str, Treatment | str] = field(default_factory=dict)
    key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        checked: dict[str, Treatment] = {}
        for name, how in self.fields.items():
            try:
                checked[name] = Treatment(how)
            except ValueError:
                raise InvalidInputError(
                    f"personal field {name!r}: treatment {how!r} is not one of drop, hash",
                    field=f"personal.{name}",
                ) from None
        object.__setattr__(self, "fields", checked)
        if Treatment.HASH in checked.values() and (
            self.key is None or len(self.key) < MIN_KEY_BYTES
        ):
            raise InvalidInputError(
                f"hashing personal fields needs a key of at least {MIN_KEY_BYTES} bytes",
                field="key",
            )

    def pseudonym(self, value: Any) -> str:
        """The keyed hash that replaces ``value`` (to look up the records of a known value)."""
        if self.key is None:
            raise InvalidInputError("no key is configured for personal data", field="key")
        mac = hmac.new(self.key, canonical_json(value).encode("utf-8"), hashlib.sha256)
        return PREFIX + mac.hexdigest()

    def _treat(self, name: str, value: Any) -> tuple[bool, Any]:
        """(keep?, new value) for a field called ``name``."""
        how = self.fields.get(name)
        if how is None:
            return True, self._walk(value)
        if how is Treatment.DROP:
            return False, None
        return True, self.pseudonym(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                keep, new = self._treat(str(k), v)
                if keep:
                    out[k] = new
            return out
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        return value

    def apply(self, decision: Decision) -> Decision:
        """``decision`` with every personal field dropped or replaced by its pseudonym."""
        if not self.fields:
            return decision
        features: list[FeatureValue] = []
        for f in decision.features:
            if f.name not in self.fields and not isinstance(f.value, Mapping | list | tuple):
                features.append(f)  # the common case: nothing to change, nothing to copy
                continue
            keep, value = self._treat(f.name, f.value)
            if keep:
                features.append(dataclasses.replace(f, value=value))
        reasons = []
        for r in decision.reasons:
            how = self.fields.get(r.feature)
            if how is Treatment.DROP:
                r = dataclasses.replace(r, value=None)
            elif how is Treatment.HASH and r.value is not None:
                r = dataclasses.replace(r, value=self.pseudonym(r.value))
            reasons.append(r)
        return dataclasses.replace(
            decision,
            entity=self._walk(decision.entity),
            context=self._walk(decision.context),
            features=tuple(features),
            reasons=tuple(reasons),
        )
