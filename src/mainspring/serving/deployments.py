"""Deployments: a served name bound to arms of model versions, with traffic weights.

Roles of an arm:

- ``champion`` (exactly one): answers whatever traffic the other arms do not take;
- ``canary``: answers ``weight`` % of the traffic;
- ``experiment``: like a canary, one of several arms of an A/B test;
- ``shadow``: receives a copy of ``weight`` % of the requests; its answer is logged, never returned.

Assignment is sticky: a request carrying a key (the ``routing_key`` request parameter) always lands
on the same arm for the same weights (a SHA-256 hash of deployment and key picks one of 10,000
buckets); requests without a key are spread at random.

Every change is stored with a new revision and recorded in the registry's hash-chained history.

>>> from mainspring.storage.memory import memory_metadata
>>> store = DeploymentStore(memory_metadata())
>>> d = store.put(Deployment("credit-api", (Arm("main", "credit", "champion", CHAMPION_ROLE),
...     Arm("next", "credit", "challenger", "canary", 10.0))), actor="alice", reason="canary")
>>> d.revision, d.arm("next").weight, [a.name for a in store.list()]
(1, 10.0, ['credit-api'])
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mainspring.errors import ConflictError, InvalidInputError, NotFoundError
from mainspring.records import ModelRef, check_name, utcnow
from mainspring.registry.service import HISTORY_STREAM
from mainspring.serving.policy import Policy
from mainspring.storage.base import MetadataStore
from mainspring.storage.chain import HashChain
from mainspring.storage.schema import deployments

if TYPE_CHECKING:
    from mainspring.registry import Registry

CHAMPION_ROLE = "champion"
ROLES = ("champion", "canary", "experiment", "shadow")
BUCKETS = 10_000
#: The request parameter whose value makes arm assignment sticky.
ROUTING_KEY = "routing_key"


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm: ``model`` at ``version`` (a number or an alias), its role and weight in %."""

    name: str
    model: str
    version: str
    role: str = CHAMPION_ROLE
    weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "role": self.role,
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "arm") -> Arm:
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{where} must be an object", field=where)
        try:
            weight = float(data.get("weight", 0.0))
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"{where}.weight must be a number", field=f"{where}.weight"
            ) from None
        return cls(
            name=str(data.get("name", "")),
            model=str(data.get("model", "")),
            version=str(data.get("version", "")),
            role=str(data.get("role", CHAMPION_ROLE)),
            weight=weight,
        )


@dataclass(frozen=True, slots=True)
class Deployment:
    """A served name and its arms; ``revision`` grows with every change.

    A deployment that makes decisions also names the feature service its model reads
    (``features``) and the :class:`~mainspring.serving.policy.Policy` applied to the score.
    """

    name: str
    arms: tuple[Arm, ...]
    revision: int = 0
    updated_by: str = ""
    updated_at: str = ""
    features: str | None = None
    policy: Policy | None = None
    _buckets: tuple[tuple[int, Arm], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        check_name(self.name, field="name")
        if not self.arms:
            raise InvalidInputError("a deployment needs at least a champion arm", field="arms")
        seen: set[str] = set()
        for i, arm in enumerate(self.arms):
            where = f"arms[{i}]"
            check_name(arm.name, field=f"{where}.name")
            check_name(arm.model, field=f"{where}.model")
            check_name(arm.version, field=f"{where}.version")
            if arm.name in seen:
                raise InvalidInputError(f"arm {arm.name!r} appears twice", field=f"{where}.name")
            seen.add(arm.name)
            if arm.role not in ROLES:
                raise InvalidInputError(
                    f"arm {arm.name!r} has role {arm.role!r}; use one of {', '.join(ROLES)}",
                    field=f"{where}.role",
                )
            if not 0.0 <= arm.weight <= 100.0:
                raise InvalidInputError(
                    f"arm {arm.name!r} has weight {arm.weight}; weights are percentages 0-100",
                    field=f"{where}.weight",
                )
        champions = [a for a in self.arms if a.role == CHAMPION_ROLE]
        if len(champions) != 1:
            raise InvalidInputError(
                f"a deployment has exactly one champion arm, not {len(champions)}", field="arms"
            )
        taken = sum(a.weight for a in self.arms if a.role in ("canary", "experiment"))
        if taken > 100.0:
            raise InvalidInputError(
                f"canary and experiment arms take {taken:g}% of the traffic; at most 100%",
                field="arms",
            )
        # the bucket table: upper bound (exclusive) -> arm, champion last with the remainder
        table: list[tuple[int, Arm]] = []
        bound = 0.0
        for arm in self.arms:
            if arm.role in ("canary", "experiment") and arm.weight > 0:
                bound += arm.weight
                table.append((round(bound * BUCKETS / 100), arm))
        table.append((BUCKETS, champions[0]))
        object.__setattr__(self, "_buckets", tuple(table))

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise NotFoundError("arm", f"{self.name}/{name}", f"arms: {', '.join(self.arm_names)}")

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arms)

    @property
    def shadows(self) -> tuple[Arm, ...]:
        return tuple(a for a in self.arms if a.role == "shadow" and a.weight > 0)

    def bucket(self, key: str | None) -> int:
        """The bucket of ``key`` (sticky), or a random one without a key."""
        if key is None:
            return random.randrange(BUCKETS)  # noqa: S311 - traffic splitting, not security
        digest = hashlib.sha256(f"{self.name}\0{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % BUCKETS

    def choose(self, key: str | None) -> Arm:
        """The arm that answers a request with routing key ``key``."""
        if len(self._buckets) == 1:  # one arm answers everything: no bucket to work out
            return self._buckets[0][1]
        bucket = self.bucket(key)
        for bound, arm in self._buckets:
            if bucket < bound:
                return arm
        return self._buckets[-1][1]

    def mirrored(self, key: str | None) -> list[Arm]:
        """The shadow arms that receive a copy of this request."""
        if not any(a.role == "shadow" for a in self.arms):
            return []
        bucket = self.bucket(key)
        return [a for a in self.shadows if bucket < round(a.weight * BUCKETS / 100)]

    def with_weights(self, weights: Mapping[str, float]) -> Deployment:
        unknown = sorted(set(weights) - set(self.arm_names))
        if unknown:
            raise InvalidInputError(
                f"unknown arm{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"arms: {', '.join(self.arm_names)}",
                field="weights",
            )
        arms = tuple(
            replace(a, weight=float(weights[a.name])) if a.name in weights else a for a in self.arms
        )
        return replace(self, arms=arms)

    @property
    def decides(self) -> bool:
        """Whether the deployment makes decisions (it has a policy)."""
        return self.policy is not None

    def decision_config(self) -> dict[str, Any] | None:
        if self.policy is None and self.features is None:
            return None
        return {
            "features": self.features,
            "policy": self.policy.to_dict() if self.policy is not None else None,
        }

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "arms": [a.to_dict() for a in self.arms],
            "revision": self.revision,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
        }
        if self.features is not None:
            out["features"] = self.features
        if self.policy is not None:
            out["policy"] = self.policy.to_dict()
        return out


def decision_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """``features`` and ``policy`` of a deployment from JSON-like data, validated."""
    features = data.get("features")
    if features is not None:
        check_name(features, field="features")
    policy = data.get("policy")
    return {
        "features": features,
        "policy": Policy.from_dict(policy) if policy is not None else None,
    }


def check_policy_output(registry: Registry, deployment: Deployment) -> None:
    """Refuse (field ``policy.output``) a policy that scores an ``output`` the model version of
    an answering arm lacks. Checked when a deployment is set; the decision service checks again
    when it plans, since an arm's alias may move to another version."""
    policy = deployment.policy
    if policy is None or policy.output is None:
        return
    for arm in deployment.arms:
        if arm.role == "shadow":  # a shadow's answer is only logged
            continue
        sep = "/" if arm.version.isdigit() else "@"
        version = registry.get(ModelRef.parse(f"{arm.model}{sep}{arm.version}", field="arm"))
        outputs = tuple(f.name for f in version.signature.outputs or ()) or ("prediction",)
        policy.score_column(outputs, model=f"model {version.ref} (arm {arm.name})")


def _from_row(row: Any) -> Deployment:
    arms = tuple(Arm.from_dict(a) for a in row.arms)
    at = row.updated_at.isoformat() if row.updated_at else ""
    extra = decision_fields(row.decision) if row.decision else {}
    return Deployment(row.name, arms, int(row.revision), row.updated_by, at, **extra)


class DeploymentStore:
    """Deployments in the metadata store; changes are recorded in the registry history."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self.history = HashChain(store, HISTORY_STREAM)

    def list(self) -> list[Deployment]:
        with self.store.read() as conn:
            rows = conn.execute(select(deployments).order_by(deployments.c.name)).all()
        return [_from_row(r) for r in rows]

    def get(self, name: str) -> Deployment:
        with self.store.read() as conn:
            row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
        if row is None:
            raise NotFoundError("deployment", name)
        return _from_row(row)

    def revisions(self) -> dict[str, int]:
        """Name -> revision of every deployment (cheap: for change polling)."""
        with self.store.read() as conn:
            query = select(deployments.c.name, deployments.c.revision)
            return {r.name: int(r.revision) for r in conn.execute(query)}

    def put(
        self,
        deployment: Deployment,
        *,
        actor: str,
        reason: str = "",
        expected_revision: int | None = None,
        action: str = "deployment.set",
    ) -> Deployment:
        """Create or replace ``deployment``; ``expected_revision`` guards concurrent edits."""
        now = utcnow()
        with self.store.write() as conn:
            row = conn.execute(
                select(deployments.c.revision).where(deployments.c.name == deployment.name)
            ).first()
            current = int(row.revision) if row else 0
            if expected_revision is not None and expected_revision != current:
                raise ConflictError(
                    f"deployment {deployment.name!r} is at revision {current}, not "
                    f"{expected_revision}; read it again and retry"
                )
            values = {
                "arms": [a.to_dict() for a in deployment.arms],
                "decision": deployment.decision_config(),
                "revision": current + 1,
                "updated_at": now,
                "updated_by": actor,
            }
            if row is None:
                conn.execute(deployments.insert().values(name=deployment.name, **values))
            else:
                conn.execute(
                    deployments.update()
                    .where(deployments.c.name == deployment.name)
                    .values(**values)
                )
            self.history.append(
                conn,
                actor=actor,
                action=action,
                subject=f"deployment/{deployment.name}",
                reason=reason,
                details={
                    "revision": current + 1,
                    "arms": values["arms"],
                    "decision": values["decision"],
                },
            )
        return replace(
            deployment, revision=current + 1, updated_by=actor, updated_at=now.isoformat()
        )

    def set_weights(
        self, name: str, weights: Mapping[str, float], *, actor: str, reason: str = ""
    ) -> Deployment:
        """Change arm weights at run time (the other arms keep theirs)."""
        current = self.get(name)
        changed = current.with_weights(weights)
        return self.put(
            changed,
            actor=actor,
            reason=reason,
            expected_revision=current.revision,
            action="deployment.weights",
        )

    def policy_at(self, name: str, revision: int) -> Policy | None:
        """The policy deployment ``name`` had at ``revision`` (from the hash-chained history)."""
        for entry in self.history.entries(subject=f"deployment/{name}"):
            if entry.details.get("revision") == revision:
                config = entry.details.get("decision") or {}
                policy = config.get("policy")
                return Policy.from_dict(policy) if policy is not None else None
        return None

    def delete(self, name: str, *, actor: str, reason: str = "") -> None:
        with self.store.write() as conn:
            gone = conn.execute(deployments.delete().where(deployments.c.name == name)).rowcount
            if not gone:
                raise NotFoundError("deployment", name)
            self.history.append(
                conn, actor=actor, action="deployment.delete", subject=f"deployment/{name}",
                reason=reason,
            )  # fmt: skip


def arms_from(items: Sequence[Mapping[str, Any]]) -> tuple[Arm, ...]:
    """Arms from JSON-like mappings (control-plane bodies, files)."""
    return tuple(Arm.from_dict(item, f"arms[{i}]") for i, item in enumerate(items))
