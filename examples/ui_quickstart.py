"""The web UI: a few decisions in a fresh project, then the pages a person would open, fetched
in process (what `mainspring up` serves at http://127.0.0.1:8000/ui): the overview, the decision
explorer, one decision's account, its replay, and the review queue with an override.

Run: python examples/ui_quickstart.py [PROJECT_DIR]
"""

from __future__ import annotations

import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

import mainspring as ms
from mainspring.api.app import create_app
from mainspring.serving import DataPlane
from mainspring.serving.decisions import DecisionService
from mainspring.serving.deployments import Arm, Deployment, DeploymentStore
from mainspring.serving.policy import Policy
from mainspring.serving.request import DecisionRequest

#: What tests/test_examples.py expects in the output.
EXPECT = "replay: same, bit for bit"

FEATURES = ["income", "debt_ratio", "late_payments"]
NOW = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = {
    "thresholds": [{"below": 0.3, "decision": "approve"}, {"decision": "decline"}],
    "review": {"low": 0.2, "high": 0.6},
    "explain": {
        "top_k": 2,
        "codes": {
            "debt_ratio": {"up": {"code": "D01", "text": "Debt is high relative to income"}},
            "late_payments": {"up": {"code": "L01", "text": "Recent late payments"}},
        },
    },
}


class Text(HTMLParser):
    """The visible text of a page, one line per block, without the nav bar."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = [""]
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("head", "header", "svg", "form"):
            self.skip += 1
        if tag in ("p", "tr", "h1", "h2", "dt", "div", "li", "nav"):
            self.lines.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "header", "svg", "form"):
            self.skip -= 1
        if tag in ("td", "th", "dt"):
            self.lines[-1] += "  "

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.lines[-1] += re.sub(r"\s+", " ", data)


def text(html: str) -> list[str]:
    parser = Text()
    parser.feed(html)
    return [re.sub(r" {3,}", "  ", line).strip() for line in parser.lines if line.strip()]


def make_decisions(project: ms.Project, directory: Path) -> None:
    rng = np.random.default_rng(7)
    x = pd.DataFrame(
        {"income": rng.lognormal(10.5, 0.5, 2000), "debt_ratio": rng.beta(2, 5, 2000),
         "late_payments": rng.poisson(0.5, 2000).astype(float)}
    )  # fmt: skip
    risk = 2.5 * x["debt_ratio"] + 0.8 * x["late_payments"] - 0.5 * (np.log(x["income"]) - 10.5)
    y = (risk + rng.normal(scale=0.5, size=2000) > 1.2).astype(int)
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1).fit(x, y)
    customers = x.iloc[:20].copy()
    customers.insert(0, "customer_id", np.arange(20, dtype=np.int64))
    customers.insert(1, "event_timestamp", pd.Timestamp(NOW - timedelta(days=1)))
    customers.to_parquet(directory / "customers.parquet")

    customer = ms.Entity("customer", {"customer_id": "int64"})
    source = ms.FileSource("customers.parquet")
    fields = [ms.Field(f) for f in FEATURES]
    profile = ms.FeatureView("profile", customer, fields, source, ttl=timedelta(days=30))
    project.features.apply([customer, profile, ms.FeatureService("credit", [profile])],
                           actor="alice")  # fmt: skip
    project.features.materialize(end=NOW)
    registry = project.registry
    registry.register("credit", model, actor="alice")
    registry.request_approval("credit", 1, actor="alice")
    registry.approve("credit", 1, actor="bob", reason="validated")
    registry.set_alias("credit", "champion", 1, actor="alice")
    deployments = DeploymentStore(project.metadata)
    deployments.put(
        Deployment("credit-decisions", (Arm("main", "credit", "champion"),), features="credit",
                   policy=Policy.from_dict(POLICY)),
        actor="alice",
    )  # fmt: skip
    plane = DataPlane(registry, deployments=deployments)
    plane.start()
    try:
        service = DecisionService(plane, project.decisions, project.features)
        for i in range(20):
            service.decide("credit-decisions", DecisionRequest({"customer_id": i}))
    finally:
        plane.close()


def main(directory: Path) -> None:
    with ms.Project.open(directory) as project:
        make_decisions(project, directory)
        # `mainspring up` serves this same app; here it runs in process
        with TestClient(create_app(project)) as ui:
            page = ui.get("/ui").text
            counts = re.findall(r'<div class="n">(\d+)</div><div>([^<]+)</div>', page)
            print("overview:", ", ".join(f"{label} {n}" for n, label in counts))

            page = ui.get("/ui/decisions", params={"limit": "3"}).text
            print("decision explorer, newest first:")
            for line in text(page)[1:5]:
                print("  ", line)

            decision_id = re.findall(r'href="/ui/decisions/([^"?/]+)"', page)[0]
            page = ui.get(f"/ui/decisions/{decision_id}").text
            print(f"decision {decision_id}:")
            for line in text(page)[1:5]:
                print("  ", line)

            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf is not None
            replayed = ui.post(f"/ui/decisions/{decision_id}/replay", data={"csrf": csrf[1]})
            same = '<span class="same">same</span>' in replayed.text
            print("replay:", "same, bit for bit" if same else "DIFFERENT")

            page = ui.get("/ui/reviews").text
            waiting = re.search(r"(\d+) decisions? waiting", page)
            print("review queue:", waiting[0] if waiting else "empty")
            flagged = re.findall(r'action="/ui/reviews/([^"]+)"', page)
            if flagged:
                done = ui.post(f"/ui/reviews/{flagged[0]}", data={
                    "csrf": csrf[1], "action": "override", "decision": "refer",
                    "reason_code": "DOC", "comment": "documents checked"})  # fmt: skip
                print("  ", next(line for line in text(done.text) if "override" in line))
            print("verify:", project.decisions.verify())


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
