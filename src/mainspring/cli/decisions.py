"""``mainspring decisions …``: the decision log, outcomes and human review from the command line.

(The decision service adds ``decide``, ``why`` and ``replay`` to this group.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mainspring.audit import LoggedDecision
from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.errors import IntegrityError, InvalidInputError
from mainspring.records import Outcome, new_id, utcnow

console = Console(highlight=False)


def _time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time; without an offset it is taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{option} {value!r} is not an ISO 8601 time such as 2026-01-31T12:00:00+00:00",
            field=option,
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _value(text: str) -> Any:
    """A value as JSON when it parses (``1``, ``true``, ``{"a": 1}``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _table(found: list[LoggedDecision], empty: str) -> None:
    if not found:
        console.print(empty)
        return
    table = Table("id", "at", "deployment", "decision", "model", "score", "review")
    for logged in found:
        d = logged.decision
        table.add_row(
            d.id,
            f"{d.at:%Y-%m-%d %H:%M:%S}",
            d.deployment,
            d.decision,
            f"{d.model}/{d.version}" if d.model else "-",
            "-" if d.score is None else f"{d.score:.3f}",
            "required" if d.review_required else "",
        )
    console.print(table)


@click.group()
def decisions() -> None:
    """The decision log: verify, list and show decisions; outcomes; human review."""


@decisions.command()
@pass_cli
def verify(cli: Cli) -> None:
    """Check the whole hash chain; name the first altered, missing or re-linked record."""
    with handled():
        cli.principal("read")
        result = cli.project.decisions.verify()
        data = {
            "ok": result.ok,
            "checked": result.checked,
            "first_bad_seq": result.first_bad_seq,
            "record": result.subject,
            "problem": result.problem or None,
        }
        if not result.ok:
            if cli.json_output:
                click.echo(json.dumps(data, indent=2))
            raise IntegrityError(f"the decision log does not verify: {result}")
        cli.emit(data, lambda: click.echo(str(result)))


@decisions.command("list")
@click.option("--deployment", help="Only this deployment's decisions.")
@click.option("--model", help="Only decisions of this model.")
@click.option("--since", help="From this ISO time on (inclusive; UTC if no offset).")
@click.option("--until", help="Before this ISO time (exclusive).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@pass_cli
def list_decisions(
    cli: Cli,
    deployment: str | None,
    model: str | None,
    since: str | None,
    until: str | None,
    limit: int,
) -> None:
    """List logged decisions, newest first."""
    with handled():
        cli.principal("read")
        found = cli.project.decisions.list(
            deployment=deployment,
            model=model,
            since=_time(since, "--since"),
            until=_time(until, "--until"),
            limit=limit,
        )
        cli.emit([d.to_dict() for d in found], lambda: _table(found, "no decisions logged"))


@decisions.command()
@click.argument("decision_id")
@pass_cli
def show(cli: Cli, decision_id: str) -> None:
    """Show a logged decision with its place in the chain, review and outcomes."""
    with handled():
        cli.principal("read")
        log = cli.project.decisions
        logged = log.get(decision_id)
        reviews = log.reviews(decision_id)
        data = {
            **logged.to_dict(),
            "final": reviews[-1].decision if reviews else logged.decision.decision,
            "reviews": [r.to_dict() for r in reviews],
            "outcomes": [o.to_dict() for o in log.outcomes(decision_id)],
        }
        cli.emit(data, lambda: console.print_json(json.dumps(data, default=str)))


@decisions.command()
@click.argument("decision_id")
@click.argument("value")
@click.option("--id", "outcome_id", help="Idempotency key (default: a new id).")
@click.option("--at", "at", help="When the outcome was observed (default: now).")
@click.option("--source", default="cli", show_default=True)
@pass_cli
def outcome(
    cli: Cli, decision_id: str, value: str, outcome_id: str | None, at: str | None, source: str
) -> None:
    """Attach the outcome VALUE (JSON, or text) to decision DECISION_ID."""
    with handled():
        cli.principal("record-outcome")
        attached = cli.project.decisions.attach_outcome(
            Outcome(
                decision_id,
                _value(value),
                _time(at, "--at") or utcnow(),
                outcome_id or new_id(),
                source,
            )
        )
        cli.emit(
            attached.to_dict(),
            lambda: click.echo(f"outcome {attached.id} attached to {attached.decision_id}"),
        )


@decisions.group()
def review() -> None:
    """The review queue: list it, accept or override a decision."""


@review.command("list")
@click.option("--deployment", help="Only this deployment's queue.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@pass_cli
def review_list(cli: Cli, deployment: str | None, limit: int) -> None:
    """Decisions waiting for review, oldest first."""
    with handled():
        cli.principal("read")
        found = cli.project.decisions.pending(deployment, limit=limit)
        cli.emit([d.to_dict() for d in found], lambda: _table(found, "no decisions to review"))


def _review(
    cli: Cli,
    decision_id: str,
    action: str,
    decision: str | None,
    reason_code: str,
    comment: str,
) -> None:
    with handled():
        reviewer = cli.principal("review").name
        done = cli.project.decisions.review(
            decision_id,
            reviewer=reviewer,
            action=action,
            decision=decision,
            reason_code=reason_code,
            comment=comment,
        )
        cli.emit(
            done.to_dict(),
            lambda: click.echo(
                f"{done.action.value} {decision_id}: final decision {done.decision!r} "
                f"(reviewer {done.reviewer}, review {done.id})"
            ),
        )


REASON = click.option("--reason-code", required=True, help="Why, as a code.")
COMMENT = click.option("--comment", default="", help="Free text for the record.")


@review.command()
@click.argument("decision_id")
@REASON
@COMMENT
@pass_cli
def accept(cli: Cli, decision_id: str, reason_code: str, comment: str) -> None:
    """Accept decision DECISION_ID as it is."""
    _review(cli, decision_id, "accept", None, reason_code, comment)


@review.command()
@click.argument("decision_id")
@click.option("--decision", required=True, help="The decision that replaces the logged one.")
@REASON
@COMMENT
@pass_cli
def override(cli: Cli, decision_id: str, decision: str, reason_code: str, comment: str) -> None:
    """Override decision DECISION_ID with --decision."""
    _review(cli, decision_id, "override", decision, reason_code, comment)
