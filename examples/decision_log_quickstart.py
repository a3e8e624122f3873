"""Log decisions (personal data hashed or dropped), review one, attach an outcome, verify the chain,
and read the labels for retraining.

Run: python examples/decision_log_quickstart.py [PROJECT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mainspring as ms
from mainspring.records import Decision, FeatureValue, Outcome

#: What tests/test_examples.py looks for in the output.
EXPECT = "chain intact"

SETTINGS = """\
audit:
  personal: {ssn: drop, email: hash}
  segments: [region]
"""


def main(directory: str) -> None:
    Path(directory, "mainspring.yaml").write_text(SETTINGS, encoding="utf-8")
    t0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with ms.Project.open(directory) as project:
        log = project.decisions
        for i, score in enumerate([0.12, 0.41, 0.77, 0.35]):
            logged = log.append(
                Decision(
                    id=f"d-{i}",
                    deployment="credit",
                    at=t0 + timedelta(minutes=i),
                    decision="approve" if score < 0.3 else "refer",
                    policy="credit@1",
                    entity={"customer": f"c-{i}", "ssn": "123-45-6789", "region": "north"},
                    context={"email": f"applicant{i}@example.com"},
                    features=(FeatureValue("income", 40_000.0 + 1000 * i, t0, "profile"),),
                    model="credit-risk",
                    version=3,
                    score=score,
                    review_required=score >= 0.3,
                )
            )
            print(f"logged {logged.id} as #{logged.seq} hash {logged.hash[:12]}…")
        stored = log.get("d-0").decision
        print(f"stored entity {dict(stored.entity)}, email {stored.context['email'][:24]}…")

        print("to review:", [d.id for d in log.pending()])
        review = log.review(
            "d-1",
            reviewer="carol",
            action="override",
            decision="approve",
            reason_code="income-verified",
            comment="payslips checked",
        )
        log.review("d-2", reviewer="carol", action="accept", reason_code="policy-ok")
        print(f"{review.reviewer} overrode d-1: final decision {log.final('d-1')!r}")
        log.attach_outcome(Outcome("d-1", {"repaid": True}, t0 + timedelta(days=90), id="o-1"))
        for label in log.labels():
            outcome = label.outcome.value if label.outcome else None
            print(f"label {label.decision.id}: final {label.final}, outcome {outcome}")
        for rate in log.override_rate("region"):
            print(f"override rate in {rate.group}: {rate.overrides}/{rate.reviews}")
        print(log.verify())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
