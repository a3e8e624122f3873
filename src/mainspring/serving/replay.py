"""Replay: re-execute logged decisions, exactly, or with a candidate model.

:meth:`Replayer.replay` loads the exact model version the decision names (checked against the
logged artifact digest), rebuilds the input from the logged feature values, predicts, and applies
the policy the deployment had at the logged revision: tree models give the same score bit for
bit. :meth:`Replayer.against` re-scores past decisions with another model version under the same
policies and reports which decisions would change.

A decision can not be replayed when its model version was deleted, or when a model input was
dropped or hashed as personal data before it was logged; both are said plainly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.records import Decision, ModelRef
from mainspring.registry import LoadedVersion, Registry
from mainspring.serving.deployments import DeploymentStore
from mainspring.serving.policy import Policy


@dataclass(frozen=True, slots=True)
class Replayed:
    """A decision executed again: the score and decision it gives now."""

    logged: Decision
    score: float | None
    decision: str
    note: str = ""

    @property
    def same_score(self) -> bool:
        """Bit for bit (both None for decisions made without the model)."""
        return self.score == self.logged.score

    @property
    def same(self) -> bool:
        return self.same_score and self.decision == self.logged.decision


@dataclass(frozen=True, slots=True)
class Change:
    """A past decision that a candidate model would have made differently."""

    decision_id: str
    before: str
    after: str
    score_before: float | None
    score_after: float


@dataclass(slots=True)
class Comparison:
    """How many past decisions a candidate would change, and which."""

    candidate: str
    total: int = 0
    rescored: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.changes)


def _policy_ref(decision: Decision) -> tuple[str, int]:
    """``credit@3:abcd`` -> (``credit``, 3)."""
    head = decision.policy.split(":", 1)[0]
    name, _, revision = head.rpartition("@")
    if not name or not revision.isdigit():
        raise InvalidInputError(
            f"decision {decision.id} names policy {decision.policy!r}, not deployment@revision",
            field="policy",
        )
    return name, int(revision)


class Replayer:
    """Replays decisions against the registry and the deployments' history."""

    def __init__(self, registry: Registry, deployments: DeploymentStore) -> None:
        self.registry = registry
        self.deployments = deployments
        self._loaded: dict[str, LoadedVersion] = {}
        self._policies: dict[tuple[str, int], Policy | None] = {}

    def policy(self, decision: Decision) -> Policy:
        key = _policy_ref(decision)
        if key not in self._policies:
            self._policies[key] = self.deployments.policy_at(*key)
        policy = self._policies[key]
        if policy is None:
            raise NotFoundError(
                "policy", decision.policy, "the deployment history has no policy at that revision"
            )
        if not decision.policy.endswith(f":{policy.digest}"):
            raise InvalidInputError(
                f"the policy of {decision.policy} in the history has digest {policy.digest}: "
                "the history and the decision disagree",
                field="policy",
            )
        return policy

    def load(self, ref: str, digest: str | None = None) -> LoadedVersion:
        loaded = self._loaded.get(ref)
        if loaded is None:
            try:
                loaded = self.registry.load(ModelRef.parse(ref))
            except NotFoundError:
                name, _, number = ref.partition("/")
                gone = self.registry.deleted(name, int(number)) if number.isdigit() else None
                if gone is None:
                    raise
                raise NotFoundError(
                    "model version", ref,
                    f"it was deleted on {gone['at']} by {gone['actor']} ({gone['reason']}), so "
                    "its decisions can no longer be re-executed",
                ) from None  # fmt: skip
            self._loaded[ref] = loaded
        if digest is not None and loaded.version.digest != digest:
            raise InvalidInputError(
                f"{ref} holds artifact {loaded.version.digest[:12]}…, but the decision was made "
                f"with {digest[:12]}…",
                field="digest",
            )
        return loaded

    def row(self, decision: Decision, loaded: LoadedVersion) -> npt.NDArray[np.float64]:
        """The model input of ``decision`` in ``loaded``'s signature order."""
        logged = {f.name: f.value for f in decision.features}
        logged.update({k: v for k, v in decision.context.items() if k not in logged})
        row = np.empty((1, len(loaded.signature.input_names)), dtype=np.float64)
        for i, name in enumerate(loaded.signature.input_names):
            if name not in logged:
                raise InvalidInputError(
                    f"decision {decision.id} has no logged value for {name!r} (dropped as personal "
                    "data, or not an input of the model that decided)",
                    field=name,
                )
            value = logged[name]
            if isinstance(value, str):
                raise InvalidInputError(
                    f"decision {decision.id} logged {name!r} as {value[:20]!r} (hashed as personal "
                    "data): it cannot be re-executed",
                    field=name,
                )
            row[0, i] = math.nan if value is None else float(value)
        return row

    def _facts(self, decision: Decision) -> dict[str, object]:
        return {
            "context": decision.context,
            "entity": decision.entity,
            "features": {f.name: f.value for f in decision.features},
        }

    def replay(self, decision: Decision) -> Replayed:
        """Execute ``decision`` again with its logged inputs, model version and policy."""
        policy = self.policy(decision)
        facts = self._facts(decision)
        rule = policy.first_rule("before", facts)
        if decision.model is None or decision.version is None:
            if rule is not None and rule.decision is not None:
                return Replayed(decision, None, rule.decision, f"before:{rule.name}")
            return Replayed(decision, None, policy.fallback, "fallback (the model was not used)")
        ref = f"{decision.model}/{decision.version}"
        loaded = self.load(ref, decision.digest)
        score = self._score(loaded, decision, policy)
        verdict, _, how = policy.conclude(score, facts, rule)
        return Replayed(decision, score, verdict, how)

    def _score(self, loaded: LoadedVersion, decision: Decision, policy: Policy) -> float:
        scores = np.asarray(loaded.predict(self.row(decision, loaded)), dtype=np.float64)
        scores = scores.reshape(1, -1)
        outputs = [f.name for f in loaded.signature.outputs or ()]
        return float(scores[0, policy.score_column(outputs)])

    def against(self, decisions: Iterable[Decision], candidate: str) -> Comparison:
        """Re-score ``decisions`` with ``candidate`` (``name/version`` or ``name@alias``)."""
        loaded = self.load(candidate)
        comparison = Comparison(candidate=str(loaded.version.ref))
        for decision in decisions:
            comparison.total += 1
            if decision.model is None:
                comparison.skipped["decided without the model"] = (
                    comparison.skipped.get("decided without the model", 0) + 1
                )
                continue
            try:
                policy = self.policy(decision)
                score = self._score(loaded, decision, policy)
            except (InvalidInputError, NotFoundError) as exc:
                field_name = getattr(exc, "field", None)
                reason = type(exc).__name__ + (f" ({field_name})" if field_name else "")
                comparison.skipped[reason] = comparison.skipped.get(reason, 0) + 1
                continue
            comparison.rescored += 1
            facts = self._facts(decision)
            verdict, _, _ = policy.conclude(score, facts, policy.first_rule("before", facts))
            if verdict != decision.decision:
                comparison.changes.append(
                    Change(decision.id, decision.decision, verdict, decision.score, score)
                )
        return comparison
