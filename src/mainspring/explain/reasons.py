"""Reason codes: the words for what moved a score, as in an adverse-action notice.

A :class:`ReasonCodes` maps a feature and the direction it pushed the score (``up`` or ``down``)
to a stable code and a sentence a person can read::

    debt_ratio:
      up:   {code: D01, text: Debt is high relative to income}
      down: {code: D02, text: Debt is low relative to income}

:meth:`ReasonCodes.top` turns one row's attributions into the ``k`` strongest reasons toward a
direction. A feature without a configured code for its direction still gets a reason: the code is
the feature name followed by ``+`` (pushed up) or ``-`` (pushed down), and the text says
"<feature> raised the score" or "<feature> lowered the score". Features whose contribution is
exactly zero never give a reason.

>>> codes = ReasonCodes.from_mapping({
...     "debt_ratio": {"up": {"code": "D01", "text": "Debt is high relative to income"}}})
>>> [(r.code, r.contribution) for r in codes.top(["income", "debt_ratio"], [-0.4, 1.2], k=2)]
[('D01', 1.2)]
>>> [r.code for r in codes.top(["income", "debt_ratio"], [-0.4, 1.2], toward="both")]
['D01', 'income-']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError
from mainspring.records import Reason

Direction = Literal["up", "down"]
Toward = Literal["up", "down", "both"]
_DIRECTIONS = ("up", "down")
_ENTRY_KEYS = frozenset({"code", "text"})


@dataclass(frozen=True, slots=True)
class ReasonText:
    """A reason code and its human-readable text."""

    code: str
    text: str


class ReasonCodes:
    """A map from (feature, direction) to a :class:`ReasonText`."""

    __slots__ = ("_codes",)

    def __init__(self, codes: Mapping[tuple[str, Direction], ReasonText] | None = None) -> None:
        self._codes: dict[tuple[str, str], ReasonText] = {
            (feature, direction): words for (feature, direction), words in (codes or {}).items()
        }

    @classmethod
    def from_mapping(cls, obj: object) -> ReasonCodes:
        """Read ``{feature: {"up"|"down": {"code": str, "text": str}}}``, checking every field.

        Raises :class:`InvalidInputError` whose ``field`` names the offending place, such as
        ``debt_ratio.up.code``.
        """
        if not isinstance(obj, Mapping):
            raise InvalidInputError(
                f"reason codes must be a mapping of feature name to directions, not "
                f"{type(obj).__name__}",
                field="reason_codes",
            )
        codes: dict[tuple[str, Direction], ReasonText] = {}
        for feature, directions in obj.items():
            if not isinstance(feature, str) or not feature.strip():
                raise InvalidInputError(
                    f"feature names in reason codes must be non-empty strings, not {feature!r}",
                    field="reason_codes",
                )
            if not isinstance(directions, Mapping) or not directions:
                raise InvalidInputError(
                    f"reason codes for {feature!r} must map 'up' and/or 'down' to {{code, text}}",
                    field=feature,
                )
            for direction, entry in directions.items():
                if direction not in _DIRECTIONS:
                    raise InvalidInputError(
                        f"unknown direction {direction!r} for {feature!r}: use 'up' or 'down'",
                        field=f"{feature}.{direction}",
                    )
                codes[(feature, direction)] = _entry(entry, f"{feature}.{direction}")
        return cls(codes)

    def to_mapping(self) -> dict[str, dict[str, dict[str, str]]]:
        """The configuration back as plain data (what :meth:`from_mapping` reads)."""
        out: dict[str, dict[str, dict[str, str]]] = {}
        for (feature, direction), reason in self._codes.items():
            out.setdefault(feature, {})[direction] = {"code": reason.code, "text": reason.text}
        return out

    def features(self) -> frozenset[str]:
        """The features that have at least one configured code."""
        return frozenset(feature for feature, _ in self._codes)

    def check_features(self, feature_names: Sequence[str]) -> None:
        """Raise :class:`InvalidInputError` if a configured feature is not among the model's."""
        unknown = sorted(self.features() - set(feature_names))
        if unknown:
            raise InvalidInputError(
                f"reason codes name feature(s) the model does not have: {', '.join(unknown)}; "
                f"the model's features: {', '.join(feature_names)}",
                field=unknown[0],
            )

    def reason(self, feature: str, direction: Direction) -> ReasonText:
        """The configured words for ``feature`` pushing the score ``direction``, or the default."""
        found = self._codes.get((feature, direction))
        if found is not None:
            return found
        if direction == "up":
            return ReasonText(f"{feature}+", f"{feature} raised the score")
        return ReasonText(f"{feature}-", f"{feature} lowered the score")

    def top(
        self,
        feature_names: Sequence[str],
        contributions: Sequence[float] | npt.NDArray[np.float64],
        values: Sequence[Any] | npt.NDArray[Any] | None = None,
        *,
        k: int = 5,
        toward: Toward = "up",
    ) -> list[Reason]:
        """The ``k`` features that pushed the score most ``toward`` a direction, as reasons.

        ``toward="up"`` ranks positive contributions, largest first; ``"down"`` negative ones,
        most negative first; ``"both"`` all non-zero ones by magnitude. ``values`` (the feature
        values of the row, same order) are copied into the reasons when given.
        """
        if toward not in ("up", "down", "both"):
            raise InvalidInputError(
                f"toward must be 'up', 'down' or 'both', not {toward!r}", field="toward"
            )
        phi = np.asarray(contributions, dtype=np.float64).reshape(-1)
        if len(phi) != len(feature_names) or (values is not None and len(values) != len(phi)):
            raise InvalidInputError(
                f"{len(feature_names)} feature names, {len(phi)} contributions"
                + (f" and {len(values)} values" if values is not None else "")
                + ": they must have the same length",
                field="contributions",
            )
        if k <= 0:
            return []
        # plain Python: for tens of features it is several times faster than NumPy's calls
        phis = phi.tolist()
        if toward == "up":
            ranked = sorted((i for i, c in enumerate(phis) if c > 0), key=lambda i: -phis[i])
        elif toward == "down":
            ranked = sorted((i for i, c in enumerate(phis) if c < 0), key=lambda i: phis[i])
        else:  # NaN is no reason (c == c is False for it)
            ranked = sorted(
                (i for i, c in enumerate(phis) if c != 0 and c == c), key=lambda i: -abs(phis[i])
            )
        reasons: list[Reason] = []
        for i in ranked[:k]:
            contribution = phis[i]
            feature = str(feature_names[i])
            words = self.reason(feature, "up" if contribution > 0 else "down")
            value = _plain(values[i]) if values is not None else None
            reasons.append(Reason(feature, words.code, words.text, contribution, value))
        return reasons

    def __len__(self) -> int:
        return len(self._codes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReasonCodes) and self._codes == other._codes

    def __repr__(self) -> str:
        return f"ReasonCodes({len(self._codes)} codes)"


def _entry(entry: object, where: str) -> ReasonText:
    if not isinstance(entry, Mapping):
        raise InvalidInputError(
            f"{where} must be a mapping with 'code' and 'text', not {type(entry).__name__}",
            field=where,
        )
    extra = sorted(str(key) for key in entry if key not in _ENTRY_KEYS)
    if extra:
        raise InvalidInputError(
            f"{where} has unknown key(s) {', '.join(map(repr, extra))}: only 'code' and 'text'",
            field=f"{where}.{extra[0]}",
        )
    code, text = entry.get("code"), entry.get("text")
    if not isinstance(code, str) or not code.strip():
        raise InvalidInputError(f"{where}.code must be a non-empty string", field=f"{where}.code")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"{where}.text must be a non-empty string", field=f"{where}.text")
    return ReasonText(code, text)


def _plain(value: Any) -> Any:
    """NumPy scalars as Python ones, so reasons serialise as JSON."""
    return value.item() if isinstance(value, np.generic) else value
