"""``mainspring decisions decide|why|replay``: make a decision, explain one, execute it again."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.errors import InvalidInputError

if TYPE_CHECKING:
    from mainspring.audit import LoggedDecision
    from mainspring.serving.decisions import DecisionService


def _pairs(items: tuple[str, ...], option: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value that parses as JSON is taken as such (``7``, ``true``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"{option} {item!r}: use KEY=VALUE", field=option.lstrip("-"))
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def decision_service(cli: Cli) -> DecisionService:
    """The decision flow over the project's models, deployments, features and decision log."""
    from mainspring.serving import DataPlane
    from mainspring.serving.decisions import DecisionService
    from mainspring.serving.deployments import DeploymentStore

    project = cli.project
    plane = DataPlane(project.registry, deployments=DeploymentStore(project.metadata))
    plane.start()
    return DecisionService(plane, project.decisions, project.features)


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC" if at is not None else "unknown"


def account(logged: LoggedDecision, reviews: list[Any], outcomes: list[Any]) -> list[str]:
    """A readable account of one logged decision."""
    d = logged.decision
    lines = [f"decision {d.id} of deployment {d.deployment}, {_when(d.at)}"]
    review = " — sent to human review" if d.review_required else ""
    lines.append(f"  decision: {d.decision} (by {d.rule}){review}")
    if d.score is not None:
        confidence = f", confidence {d.confidence:.3f}" if d.confidence is not None else ""
        lines.append(f"  score: {d.score:.6f}{confidence}")
    if d.model is not None:
        digest = f", artifact sha256 {d.digest[:12]}…" if d.digest else ""
        lines.append(f"  model: {d.model} version {d.version}, arm {d.arm}{digest}")
    lines.append(f"  policy: {d.policy}")
    if d.entity:
        lines.append("  entity: " + ", ".join(f"{k}={v}" for k, v in d.entity.items()))
    if d.context:
        lines.append("  context: " + ", ".join(f"{k}={v}" for k, v in d.context.items()))
    if d.reasons:
        lines.append("  top reasons:")
        for r in d.reasons:
            lines.append(
                f"    {r.code:<10} {r.text}  ({r.feature} = {r.value}, {r.contribution:+.4f})"
            )
    if d.features:
        lines.append("  features the model saw (as of):")
        for f in d.features:
            source = f"{f.view}, {_when(f.as_of)}" if f.view else "from the request"
            lines.append(f"    {f.name:<20} {f.value!s:<24} {source}")
    if d.base_value is not None:
        total = d.base_value + sum(d.attributions.values())
        lines.append(f"  attributions: base {d.base_value:+.4f} + features = margin {total:+.4f}")
    for review_ in reviews:
        comment = f': "{review_.comment}"' if review_.comment else ""
        lines.append(
            f"  review: {review_.action.value} → {review_.decision} by {review_.reviewer} "
            f"({review_.reason_code}){comment}, {_when(review_.at)}"
        )
    for outcome in outcomes:
        lines.append(f"  outcome: {outcome.value} ({outcome.source}), {_when(outcome.at)}")
    lines.append(
        f"  chain: #{logged.seq}, hash {logged.hash[:16]}…, previous {logged.prev_hash[:16]}…"
    )
    return lines


@click.command()
@click.argument("deployment")
@click.option("--entity", "-e", "entity", multiple=True, help="Entity key KEY=VALUE (repeat).")
@click.option("--context", "-c", "context", multiple=True, help="Context KEY=VALUE (repeat).")
@click.option("--request-id", help="The caller's request id, logged with the decision.")
@pass_cli
def decide(
    cli: Cli,
    deployment: str,
    entity: tuple[str, ...],
    context: tuple[str, ...],
    request_id: str | None,
) -> None:
    """Make a decision with DEPLOYMENT for an entity, and log it."""
    from mainspring.serving.oip.decide import answer
    from mainspring.serving.request import DecisionRequest

    with handled():
        cli.principal("decide")
        request = DecisionRequest.from_dict(
            {"entity": _pairs(entity, "--entity"), "context": _pairs(context, "--context"),
             "request_id": request_id}
        )  # fmt: skip
        service = decision_service(cli)
        try:
            made = service.decide(deployment, request)
        finally:
            service.plane.close()
        body = answer(made)

        def human() -> None:
            review = ", sent to review" if made.review_required else ""
            score = f" (score {made.score:.4f})" if made.score is not None else ""
            click.echo(f"{made.decision}{score}{review} — decision {made.id}")
            for r in made.reasons:
                click.echo(f"  {r.code}: {r.text}")

        cli.emit(body, human)


@click.command()
@click.argument("decision_id")
@pass_cli
def why(cli: Cli, decision_id: str) -> None:
    """Say why decision DECISION_ID came out as it did: inputs, model, reasons, reviews."""
    with handled():
        cli.principal("read")
        log = cli.project.decisions
        logged = log.get(decision_id)
        reviews, outcomes = log.reviews(decision_id), log.outcomes(decision_id)
        data = {
            **logged.to_dict(),
            "reviews": [r.to_dict() for r in reviews],
            "outcomes": [o.to_dict() for o in outcomes],
        }
        cli.emit(data, lambda: click.echo("\n".join(account(logged, reviews, outcomes))))


@click.command()
@click.argument("decision_id", required=False)
@click.option("--against", metavar="NAME/VERSION", help="Re-score past decisions with this model.")
@click.option("--since", type=click.DateTime(), help="With --against: from this time (UTC).")
@click.option("--until", type=click.DateTime(), help="With --against: up to this time (UTC).")
@click.option("--deployment", help="With --against: only this deployment's decisions.")
@click.option("--show", default=20, show_default=True, help="Changed decisions to list.")
@pass_cli
def replay(
    cli: Cli,
    decision_id: str | None,
    against: str | None,
    since: datetime | None,
    until: datetime | None,
    deployment: str | None,
    show: int,
) -> None:
    """Execute DECISION_ID again with its logged inputs and exact model (exit 1 if it differs),
    or with --against, re-score past traffic with a candidate and report what would change."""
    from datetime import UTC

    from mainspring.serving.deployments import DeploymentStore
    from mainspring.serving.replay import Replayer

    with handled():
        cli.principal("read")
        project = cli.project
        replayer = Replayer(project.registry, DeploymentStore(project.metadata))
        if (decision_id is None) == (against is None):
            raise InvalidInputError(
                "give a DECISION_ID to replay, or --against NAME/VERSION --since T", field="against"
            )
        if decision_id is not None:
            done = replayer.replay(project.decisions.get(decision_id).decision)
            data = {
                "decision_id": decision_id,
                "logged": {"score": done.logged.score, "decision": done.logged.decision},
                "replayed": {"score": done.score, "decision": done.decision},
                "same_score_bit_for_bit": done.same_score,
                "same": done.same,
            }

            def human() -> None:
                click.echo(f"logged:   {done.logged.decision} score {done.logged.score!r}")
                click.echo(f"replayed: {done.decision} score {done.score!r} ({done.note})")
                click.echo("identical, bit for bit" if done.same else "DIFFERENT")

            cli.emit(data, human)
            if not done.same:
                raise SystemExit(1)
            return
        assert against is not None
        start = since.replace(tzinfo=UTC) if since is not None else None
        end = until.replace(tzinfo=UTC) if until is not None else None
        past = (
            logged.decision
            for logged in project.decisions.iterate(since=start, until=end, deployment=deployment)
        )
        comparison = replayer.against(past, against)
        data = {
            "candidate": comparison.candidate,
            "total": comparison.total,
            "rescored": comparison.rescored,
            "changed": comparison.changed,
            "skipped": comparison.skipped,
            "changes": [
                {"decision_id": c.decision_id, "before": c.before, "after": c.after,
                 "score_before": c.score_before, "score_after": c.score_after}
                for c in comparison.changes
            ],
        }  # fmt: skip

        def summary() -> None:
            click.echo(
                f"{comparison.candidate} re-scored {comparison.rescored} of {comparison.total} "
                f"decisions: {comparison.changed} would change"
            )
            for reason, count in comparison.skipped.items():
                click.echo(f"  skipped {count}: {reason}")
            for c in comparison.changes[:show]:
                click.echo(
                    f"  {c.decision_id}  {c.before} → {c.after}  "
                    f"({c.score_before:.4f} → {c.score_after:.4f})"
                )

        cli.emit(data, summary)
