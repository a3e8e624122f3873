"""The decisions step of the demo: a deciding deployment over the champion and the features, a
few decisions with their reasons, a ``why``, a bit-for-bit replay, a human override, and the
decision log's chain verified.

``run(project)`` expects the registry and feature steps to have run (``credit-risk@champion``
and the ``credit_model`` feature service).
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mainspring.project import Project
from mainspring.records import ReviewAction
from mainspring.serving import DataPlane
from mainspring.serving.decisions import DecisionService
from mainspring.serving.deployments import Arm, Deployment, DeploymentStore
from mainspring.serving.policy import Policy
from mainspring.serving.replay import Replayer
from mainspring.serving.request import DecisionRequest

console = Console(highlight=False)
DEPLOYMENT = "credit-decisions"
REASONS = {
    # keyed by the direction the feature moved the risk score (up: toward default)
    "income": {"up": {"code": "R01", "text": "Income is low"}},
    "debt_ratio": {"up": {"code": "R02", "text": "Debt is high relative to income"}},
    "late_payments": {"up": {"code": "R03", "text": "Recent late payments"}},
    "utilization": {"up": {"code": "R04", "text": "Credit lines are heavily used"}},
    "credit_lines": {"up": {"code": "R05", "text": "Few credit lines"}},
    "age": {"up": {"code": "R06", "text": "Limited time in the credit file"}},
}
POLICY = {
    "thresholds": [
        {"below": 0.2, "decision": "approve"},
        {"below": 0.4, "decision": "refer"},
        {"decision": "decline"},
    ],
    "review": {"low": 0.25, "high": 0.35},
    "rules": {
        "before": [
            {"name": "no-consent", "if": {"context.consent": {"==": False}}, "decision": "decline"}
        ]
    },
    "fallback": {"decision": "refer", "review": True},
    "unknown_entity": "refuse",
    "explain": {"top_k": 3, "toward": "up", "codes": REASONS},
}


def run(project: Project, *, actor: str = "alice", reviewer: str = "carol") -> None:
    """Decide, explain, replay, override and verify, on the demo project."""
    console.rule("[bold]Decisions: explained, logged, replayable, reviewable")
    store = DeploymentStore(project.metadata)
    store.put(
        Deployment(
            DEPLOYMENT,
            (Arm("main", "credit-risk", "champion"),),
            features="credit_model",
            policy=Policy.from_dict(POLICY),
        ),
        actor=actor,
        reason="decisions for credit applications",
    )
    console.print(f"deployment [bold]{DEPLOYMENT}[/]: credit-risk@champion, features credit_model,")
    console.print("   approve < 0.2 ≤ refer < 0.4 ≤ decline; scores in [0.25, 0.35] go to review")
    plane = DataPlane(project.registry, deployments=store)
    plane.start()
    service = DecisionService(plane, project.decisions, project.features)
    try:
        made = [
            service.decide(DEPLOYMENT, DecisionRequest({"applicant_id": i}, {"consent": True}))
            for i in range(1, 9)
        ]
        made.append(service.decide(DEPLOYMENT, DecisionRequest({"applicant_id": 9},
                                                               {"consent": False})))  # fmt: skip
    finally:
        plane.close()
    table = Table("applicant", "decision", "P(default)", "review", "top reason")
    for d in made:
        top = d.reasons[0] if d.reasons else None
        table.add_row(
            str(d.entity["applicant_id"]),
            d.decision,
            f"{d.score:.3f}" if d.score is not None else f"({d.rule})",
            "yes" if d.review_required else "",
            f"{top.code} {top.text}" if top else "",
        )
    console.print(table)

    declined = next((d for d in made if d.decision == "decline" and d.model), made[0])
    logged = project.decisions.get(declined.id)
    console.print(f"[bold]why[/] {declined.id}:")
    console.print(f"   {logged.decision.decision} by {logged.decision.rule}, score "
                  f"{logged.decision.score:.4f}, model {logged.decision.model}/"
                  f"{logged.decision.version}")  # fmt: skip
    for r in logged.decision.reasons:
        console.print(f"   {r.code} {r.text} ({r.feature} = {r.value:.3g}, {r.contribution:+.3f})")
    as_of = {f.as_of for f in logged.decision.features if f.as_of}
    console.print(f"   features as of {', '.join(f'{t:%Y-%m-%d}' for t in sorted(as_of))}, "
                  f"views {logged.decision.feature_views}")  # fmt: skip

    replayed = Replayer(project.registry, store).replay(logged.decision)
    verdict = "identical, bit for bit" if replayed.same else "DIFFERENT"
    console.print(f"[bold]replay[/]: {verdict}")
    console.print(f"   score {replayed.score!r}, logged {declined.score!r}")

    flagged = next((d for d in made if d.review_required), None) or made[0]
    final = "approve" if flagged.decision != "approve" else "refer"
    review = project.decisions.review(
        flagged.id, reviewer=reviewer, action=ReviewAction.OVERRIDE, decision=final,
        reason_code="DOC", comment="payslips show a recent raise",
    )  # fmt: skip
    console.print(f"[bold]review[/]: {reviewer} overrides {flagged.decision} → {review.decision} "
                  f"for applicant {flagged.entity['applicant_id']} (reason DOC)")  # fmt: skip
    console.print(f"   final decision now: {project.decisions.final(flagged.id)}")
    verified = project.decisions.verify()
    console.print(f"[bold]verify[/]: {verified}")
