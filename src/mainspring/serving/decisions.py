"""The decision flow: entity keys and context in, a logged, explained decision out.

For a deployment with a policy, :meth:`DecisionService.decide`:

1. checks the request (entity keys of the feature service, context values);
2. runs the policy's ``before`` rules;
3. reads the online features in one round trip and assembles the model input in signature order
   (features first, then context values named like model inputs); an unknown entity is refused or
   filled with the policy's defaults;
4. picks the arm (sticky by the entity key) and predicts, or falls back when the model is off or
   fails;
5. explains the score (exact TreeSHAP for tree models) and turns the attributions into reason
   codes;
6. applies thresholds, the review band and the ``after`` rules;
7. appends the :class:`~mainspring.records.Decision` to the decision log and returns it once the
   log has made it durable.

Everything that can be worked out once per deployment revision (feature positions, explainers,
reason codes) is, in a :class:`Plan`; a decision only reads, predicts and compares.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError, MainspringError, NotFoundError
from mainspring.features import FeatureStore
from mainspring.records import Decision, FeatureValue, Reason, new_id, utcnow
from mainspring.serving.dataplane import DataPlane
from mainspring.serving.deployments import Deployment
from mainspring.serving.explaining import decision_explainer
from mainspring.serving.policy import Policy
from mainspring.serving.request import SCALARS, DecisionRequest, check_entity, model_row
from mainspring.serving.routed import Routed
from mainspring.serving.runtime import ModelRuntime

logger = logging.getLogger("mainspring.serving.decisions")


class DecisionSink(Protocol):
    """Where decisions go once made: the decision log (``mainspring.audit.DecisionLog``)."""

    def append(self, decision: Decision) -> Any: ...

    async def append_async(self, decision: Decision) -> Any: ...


@dataclass(slots=True)
class Explaining:
    """A model version's explainer and its reason codes, built once; and, for a LightGBM model,
    the scorer that predicts a row from the explainer's tables (``TreeScorer``: the same bits
    as LightGBM, in a fraction of the time within a decision), once it agreed with the model."""

    explainer: Any
    codes: Any
    scorer: Any = None


@dataclass(slots=True)
class Plan:
    """What a deployment revision needs per decision, worked out once."""

    deployment: Deployment
    policy: Policy
    policy_version: str
    #: join keys of the feature service and whether each is an integer
    keys: tuple[tuple[str, bool], ...]
    #: feature column -> (view name, view version)
    columns: dict[str, tuple[str, int]]
    #: the feature service, or None when the context supplies every model input
    features: str | None
    explaining: dict[tuple[str, str], Explaining | None] = field(default_factory=dict)


def _scorer(runtime: ModelRuntime, explainer: Any) -> Any:
    """The ``TreeScorer`` of a LightGBM arm whose predictions it reproduces bit for bit on its
    probe rows, else None (the arm predicts through LightGBM, as before)."""
    from mainspring.explain import TreeExplainer
    from mainspring.explain.scoring import TreeScorer

    if (
        runtime.loaded.version.flavor != "lightgbm"
        or not isinstance(explainer, TreeExplainer)
        or len(runtime.output_names) != 1
    ):
        return None
    scorer = TreeScorer.for_lightgbm(explainer, runtime.loaded.model.native)
    if scorer is None:
        return None
    if not scorer.agrees(runtime.predict_matrix):
        logger.warning(
            "%s/%s: the explainer's trees do not predict as LightGBM does on every probe row; "
            "its decisions are scored by LightGBM", runtime.name, runtime.version,
        )  # fmt: skip
        return None
    return scorer


def _confidence(runtime: ModelRuntime, score: float) -> float | None:
    """For a probability, how sure the model is of the more likely class; else None."""
    if runtime.output_names[0] == "probability" and 0.0 <= score <= 1.0:
        return max(score, 1.0 - score)
    return None


class DecisionService:
    """Decisions for the deployments of a data plane that carry a policy."""

    def __init__(
        self,
        plane: DataPlane,
        log: DecisionSink,
        features: FeatureStore | None = None,
    ) -> None:
        self.plane = plane
        self.log = log
        self.features = features
        self._plans: dict[str, Plan] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ plans

    def warm(self) -> None:
        """Plan every served deployment that has a policy now: its explainers are built (and
        their kernels compiled or loaded from the cache) and its feature reads planned before the
        first request instead of during it. A server worker warms before it moves what it has
        allocated out of the garbage collector's reach (``serving.server.settle_heap``); planned
        on the first request, the plans' ~80k objects stayed in the collected heap, and each full
        collection walked them for 14-44 ms with every request in flight waiting. A deployment
        that cannot be planned is logged and left to fail its requests with the reason."""
        for deployment in self.plane.served_deployments():
            if deployment.policy is None:
                continue
            try:
                self.plan(deployment.name)
            except MainspringError as exc:
                logger.warning("deployment %s cannot decide yet: %s", deployment.name, exc)
            except Exception:  # its requests will say what is wrong; the others must serve
                logger.exception("planning the decisions of deployment %s failed", deployment.name)

    @property
    def planned(self) -> list[str]:
        """The deployments whose decisions are planned (at their revision then), by name."""
        with self._lock:
            return sorted(self._plans)

    def plan(self, name: str) -> Plan:
        """The plan of deployment ``name`` at its current revision (cached)."""
        deployment = self.plane.deployment(name)
        cached = self._plans.get(name)
        if cached is not None and cached.deployment.revision == deployment.revision:
            return cached
        if deployment.policy is None:
            raise InvalidInputError(
                f"deployment {name!r} has no decision policy; give it one (PUT "
                f"/v1/deployments/{name} with a policy) or call it over the inference protocol",
                field="deployment",
            )
        keys: tuple[tuple[str, bool], ...] = ()
        columns: dict[str, tuple[str, int]] = {}
        if deployment.features is not None:
            if self.features is None:
                raise NotFoundError(
                    "feature store", deployment.features, "this server has no feature store"
                )
            reads = self.features.plan(deployment.features)
            seen: dict[str, bool] = {}
            for part in reads.selection.parts:
                for key, integer in part.keys:
                    seen[key] = integer
                for column in part.columns:
                    if column not in reads.hidden:
                        columns[column] = (part.view.name, part.version)
            for ondemand in reads.ondemand:  # computed at request time from the context
                for column in ondemand.features:
                    columns[column] = (ondemand.view.name, ondemand.version)
            keys = tuple(seen.items())
        policy = deployment.policy
        plan = Plan(
            deployment=deployment,
            policy=policy,
            policy_version=f"{name}@{deployment.revision}:{policy.digest}",
            keys=keys,
            columns=columns,
            features=deployment.features,
        )
        runtimes = [self.plane.runtime_for(deployment, arm.name) for arm in deployment.arms]
        for arm, runtime in zip(deployment.arms, runtimes, strict=True):
            if arm.role != "shadow":  # an arm that answers must have the policy's output
                ref = runtime.loaded.version.ref
                policy.score_column(runtime.output_names, model=f"model {ref} (arm {arm.name})")
        for runtime in runtimes:  # build the explainers now, not on the first decision
            self._explaining(plan, runtime)
        with self._lock:
            self._plans[name] = plan
        return plan

    def _explaining(self, plan: Plan, runtime: ModelRuntime) -> Explaining | None:
        # a plan holds one policy, so a version's key also fixes the score column it explains
        key = (runtime.name, runtime.version)
        if key in plan.explaining:
            return plan.explaining[key]
        explaining = None
        if plan.policy.explain:
            try:
                from mainspring.explain import ReasonCodes

                # TreeSHAP, or the agnostic explainer over the version's stored background
                column = plan.policy.score_column(runtime.output_names)  # the class it scores
                explainer = decision_explainer(self.plane.registry, runtime, column)
                if explainer is None:
                    plan.explaining[key] = None
                    return None
                explainer.warm()
                codes = ReasonCodes.from_mapping(plan.policy.reason_codes)
                explaining = Explaining(explainer, codes, _scorer(runtime, explainer))
            except (ImportError, MainspringError) as exc:
                logger.warning("no explanations for %s/%s: %s", runtime.name, runtime.version, exc)
        plan.explaining[key] = explaining
        return explaining

    # ------------------------------------------------------------------ deciding

    def decide(self, name: str, request: DecisionRequest) -> Decision:
        """Decide, log durably (personal fields are treated in the log), return the decision."""
        decision = self.make(name, request)
        self.log.append(decision)
        return decision

    async def decide_async(self, name: str, request: DecisionRequest) -> Decision:
        """:meth:`decide` for the event loop: waits for the log's group commit without blocking."""
        decision = self.make(name, request)
        await self.log.append_async(decision)
        return decision

    def make(
        self,
        name: str,
        request: DecisionRequest,
        *,
        at: datetime | None = None,
        decision_id: str | None = None,
    ) -> Decision:
        """The decision for ``request``, not yet logged (``decision_id``: a given id, so that a
        request delivered twice makes one decision)."""
        started = time.perf_counter()
        at = at or utcnow()
        plan = self.plan(name)
        policy, deployment = plan.policy, plan.deployment
        if plan.keys:
            check_entity(plan.keys, request.entity, plan.deployment.name, plan.features)
        facts: dict[str, Any] = {"context": request.context, "entity": request.entity}
        # what every decision of this request holds (built once, as the Decision at the end:
        # dataclasses.replace of a 24-field record costs more than the policy's whole answer)
        base: dict[str, Any] = {
            "id": decision_id or new_id(),
            "deployment": name,
            "at": at,
            "policy": plan.policy_version,
            "entity": dict(request.entity),
            "context": dict(request.context),
            "request_id": request.request_id,
        }
        rule = policy.first_rule("before", facts)
        if rule is not None and rule.decision is not None:
            return Decision(
                **base, decision=rule.decision, review_required=rule.review,
                rule=f"before:{rule.name}", latency_ms=(time.perf_counter() - started) * 1000,
            )  # fmt: skip
        values, as_of, found = self._features(plan, request)
        if not found and plan.keys:
            if policy.unknown_entity == "refuse":
                raise NotFoundError(
                    "entity", str(dict(request.entity)),
                    f"no feature view of {plan.features!r} has it (the policy refuses unknown "
                    "entities; set unknown_entity: defaults to decide with default values)",
                )  # fmt: skip
            for column, value in policy.defaults.items():
                if values.get(column) is None:
                    values[column] = value
        key = None
        if plan.keys:
            key = "|".join(str(request.entity[k]) for k, _ in plan.keys)
        arm = deployment.arm(request.arm) if request.arm else deployment.choose(key)
        runtime = self.plane.runtime_for(deployment, arm.name)
        row, inputs = model_row(
            plan.columns, plan.features, runtime, request.context, values, as_of
        )
        feature_views = dict(plan.columns.values())
        if not policy.model_enabled:
            return self._fallback(plan, base, inputs, feature_views, started, "model disabled")
        explaining = self._explaining(plan, runtime)
        contributions = None
        try:
            if explaining is not None and explaining.scorer is not None:
                # one output (raw is the score); attributions found on the same pass
                score, contributions = explaining.scorer.predict_and_explain_row(row[0])
                raw = score
            else:
                scores = runtime.predict_matrix(row)
                score = float(scores[0, policy.score_column(runtime.output_names)])
                raw = float(scores[0, 0])
        except MainspringError:
            raise
        except Exception as exc:  # the model failed: the policy's fallback answers
            logger.exception("model %s/%s failed", runtime.name, runtime.version)
            return self._fallback(
                plan, base, inputs, feature_views, started, f"model failed: {exc}"
            )
        attributions, reasons, base_value = self._explain(
            explaining, runtime, policy, row[0], contributions
        )
        facts["features"] = values
        decision, review, decided_by = policy.conclude(score, facts, rule)
        shadows = {}
        for shadow in deployment.mirrored(key):
            try:
                shadow_runtime = self.plane.runtime_for(deployment, shadow.name)
                shadow_row, _ = model_row(
                    plan.columns, plan.features, shadow_runtime, request.context, values, as_of
                )
                shadows[shadow.name] = float(shadow_runtime.predict_matrix(shadow_row)[0, 0])
            except Exception as exc:  # a shadow never affects the answer
                logger.warning("shadow arm %s of %s failed: %s", shadow.name, name, exc)
        return Decision(
            **base,
            decision=decision,
            features=inputs,
            feature_views=feature_views,
            model=runtime.name,
            version=int(runtime.version),
            digest=runtime.loaded.version.digest,
            arm=arm.name,
            raw=raw,
            score=score,
            confidence=_confidence(runtime, score),
            review_required=review,
            rule=decided_by,
            reasons=reasons,
            attributions=attributions,
            base_value=base_value,
            shadows=shadows,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def from_inference(self, routed: Routed, scores: npt.NDArray[np.float64]) -> list[Decision]:
        """Decisions for an inference-protocol request to a deciding deployment: one per row,
        with the row's tensors as the features and the request parameters as the context."""
        deployment = routed.deciding
        assert deployment is not None
        plan = self.plan(deployment.name)
        policy, runtime = plan.policy, routed.runtime
        context = {k: v for k, v in routed.request.parameters.items() if isinstance(v, SCALARS)}
        explaining = self._explaining(plan, runtime)
        position = policy.score_column(runtime.output_names)
        at = utcnow()
        latency = (time.perf_counter() - routed.started) * 1000
        made = []
        for i, row in enumerate(routed.matrix):
            values = dict(zip(runtime.feature_names, row.tolist(), strict=True))
            facts = {"context": context, "entity": {}, "features": values}
            before = policy.first_rule("before", facts)
            score = float(scores[i, position])
            decision, review, how = policy.conclude(score, facts, before)
            if before is not None and before.decision is not None:
                decision, review, how = before.decision, before.review, f"before:{before.name}"
            attributions, reasons, base_value = self._explain(explaining, runtime, policy, row)
            made.append(
                Decision(
                    id=new_id(), deployment=deployment.name, at=at, decision=decision,
                    policy=plan.policy_version, context=context,
                    features=tuple(FeatureValue(n, v) for n, v in values.items()),
                    model=runtime.name, version=int(runtime.version),
                    digest=runtime.loaded.version.digest, arm=routed.arm,
                    raw=float(scores[i, 0]), score=score, confidence=_confidence(runtime, score),
                    review_required=review, rule=how, reasons=reasons, attributions=attributions,
                    base_value=base_value, latency_ms=latency, request_id=routed.request.id,
                )
            )  # fmt: skip
        return made

    def _explain(
        self,
        explaining: Explaining | None,
        runtime: ModelRuntime,
        policy: Policy,
        row: npt.NDArray[np.float64],
        contributions: npt.NDArray[np.float64] | None = None,
    ) -> tuple[dict[str, float], tuple[Reason, ...], float | None]:
        if explaining is None:
            return {}, (), None
        if contributions is None:
            contributions = explaining.explainer.explain_row(row)
        names = runtime.feature_names
        attributions = dict(zip(names, contributions.tolist(), strict=True))
        reasons: tuple[Reason, ...] = ()
        if policy.top_k:
            reasons = tuple(
                explaining.codes.top(
                    names, contributions, row.tolist(), k=policy.top_k, toward=policy.toward
                )
            )
        return attributions, reasons, float(explaining.explainer.expected_value)

    def _fallback(
        self,
        plan: Plan,
        base: dict[str, Any],
        inputs: tuple[FeatureValue, ...],
        feature_views: dict[str, int],
        started: float,
        why: str,
    ) -> Decision:
        return Decision(
            **base,
            decision=plan.policy.fallback,
            review_required=plan.policy.fallback_review,
            rule=f"fallback: {why}",
            features=inputs,
            feature_views=feature_views,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def _features(
        self, plan: Plan, request: DecisionRequest
    ) -> tuple[dict[str, Any], dict[str, datetime | None], bool]:
        if plan.features is None or self.features is None:
            return {}, {}, True
        online = self.features.get_online_features(
            plan.features, [request.entity], context=request.context
        )
        values = {column: column_values[0] for column, column_values in online.values.items()}
        times = {
            view: (datetime.fromtimestamp(t[0] / 1e6, UTC) if t[0] is not None else None)
            for view, t in online.event_micros.items()
        }
        as_of = {column: times.get(view) for column, (view, _) in plan.columns.items()}
        # an entity is known if a stored view has it (on-demand views have flags of their own)
        found = any(online.found[view][0] for view in online.event_micros)
        return values, as_of, found
