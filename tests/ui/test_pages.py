"""The pages on a real project: they render and show the real data; filters, replay, errors."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.ui.conftest import DEPLOYMENT, NAMES, csrf_of

from mainspring.project import Project
from mainspring.records import Decision

PAGES = ["/ui", "/ui/", "/ui/models", "/ui/models/credit", "/ui/deployments",
         f"/ui/deployments/{DEPLOYMENT}", "/ui/decisions", "/ui/reviews", "/ui/charts",
         "/ui/login"]  # fmt: skip


def ok(client: TestClient, path: str, **params: str) -> str:
    response = client.get(path, params=params) if params else client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:2000])
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def ids(page: str) -> list[str]:
    return re.findall(r'href="/ui/decisions/([^"/?]+)"', page)


def test_every_page_renders_with_the_nav_bar(client: TestClient) -> None:
    for path in PAGES:
        page = ok(client, path)
        for link in ("/ui/models", "/ui/deployments", "/ui/decisions", "/ui/reviews", "/ui/charts"):
            assert f'href="{link}"' in page, (path, link)
        assert "<script" not in page  # no JavaScript anywhere


def test_overview_counts_and_chart(client: TestClient, made: tuple[Path, list[Decision]]) -> None:
    decisions = made[1]
    page = ok(client, "/ui")
    found = re.findall(r'<div class="n">(\d+)</div><div>([^<]+)</div>', page)
    counts = {label: int(n) for n, label in found}
    flagged = sum(d.review_required for d in decisions)
    assert counts["decisions (last 24 h)"] >= len(decisions)
    assert (counts["models"], counts["deployments"]) == (1, 1)
    assert 0 < counts["open reviews"] <= flagged
    assert "<svg" in page and "Decisions per hour" in page
    for value in {d.decision for d in decisions}:
        assert f">{value}</text>" in page  # in the chart's legend


def test_model_page_shows_versions_digest_approvals_and_history(
    client: TestClient, project: Project
) -> None:
    version = project.registry.get("credit/1")
    page = ok(client, "/ui/models/credit")
    assert version.digest in page and "@champion" in page and "approval: approved" in page
    assert "approve by bob" in page and "validated" in page
    assert "&lt;b&gt;credit&lt;/b&gt; risk" in page  # the description is escaped
    assert "training data" in page and "lineage" in page
    assert client.get("/ui/models/nope").status_code == 404


def test_deployment_page_shows_arms_policy_chart_and_history(client: TestClient) -> None:
    page = ok(client, f"/ui/deployments/{DEPLOYMENT}")
    assert "main (champion, credit@champion)" in page  # the traffic chart's label
    assert "score below 0.5 → <strong>approve</strong>" in page
    assert "scores from 0.2 to 0.8 go to human review" in page
    assert ("first policy" in page and "deployment.put" in page) or "deployment." in page
    assert "approve below 0.5" in page  # a threshold line of the score histogram
    assert client.get("/ui/deployments/nope").status_code == 404


def test_decision_page_is_the_why_account(
    client: TestClient, project: Project, made: tuple[Path, list[Decision]]
) -> None:
    d = made[1][0]
    logged = project.decisions.get(d.id)
    page = ok(client, f"/ui/decisions/{d.id}")
    assert f"decision {d.id} of deployment {DEPLOYMENT}" in page  # the `why` text
    assert str(d.score) in page and d.digest is not None and d.digest in page
    assert logged.hash in page and logged.prev_hash in page and f"#{logged.seq}" in page
    assert "profile" in page and "channel=web" in page
    for reason in d.reasons:
        assert html.escape(reason.code) in page
    assert "How each feature moved the score" in page and "<svg" in page
    assert client.get("/ui/decisions/no-such-id").status_code == 404
    assert "no-such-id" in client.get("/ui/decisions/no-such-id").text


def test_replay_button_says_same(client: TestClient, made: tuple[Path, list[Decision]]) -> None:
    d = made[1][1]
    token = csrf_of(ok(client, f"/ui/decisions/{d.id}"))
    response = client.post(f"/ui/decisions/{d.id}/replay", data={"csrf": token})
    assert response.status_code == 200, response.text
    assert '<span class="same">same</span>' in response.text
    assert repr(d.score) in response.text
    refused = client.post(f"/ui/decisions/{d.id}/replay", data={})
    assert refused.status_code == 403 and "CSRF" in refused.text


def test_filters(client: TestClient, made: tuple[Path, list[Decision]]) -> None:
    decisions = made[1]
    everything = ids(ok(client, "/ui/decisions", limit="500"))
    assert everything[: len(decisions)] == [d.id for d in reversed(decisions)]
    for value in {d.decision for d in decisions}:
        shown = ids(ok(client, "/ui/decisions", decision=value, limit="500"))
        assert shown == [d.id for d in reversed(decisions) if d.decision == value]
    flagged = ids(ok(client, "/ui/decisions", review_required="yes", limit="500"))
    assert flagged == [d.id for d in reversed(decisions) if d.review_required]
    assert ids(ok(client, "/ui/decisions", model="credit/1", deployment=DEPLOYMENT, limit="500"))
    assert not ids(ok(client, "/ui/decisions", model="credit/2"))
    assert not ids(ok(client, "/ui/decisions", deployment="other"))
    assert not ids(ok(client, "/ui/decisions", since="2999-01-01"))
    assert not ids(ok(client, "/ui/decisions", until="2000-01-01"))


def test_the_explorer_pages_by_chain_position(
    client: TestClient, made: tuple[Path, list[Decision]]
) -> None:
    expected = [d.id for d in reversed(made[1])]
    seen: list[str] = []
    page = ok(client, "/ui/decisions", limit="7", deployment=DEPLOYMENT)
    while True:
        seen += ids(page)
        older = re.search(r'href="/ui/decisions\?([^"]+)">older', page)
        if older is None:
            break
        page = ok(client, "/ui/decisions?" + html.unescape(older.group(1)))
    assert seen == expected


def test_bad_filters_are_422_pages_naming_the_field(client: TestClient) -> None:
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"review_required": "perhaps"}, "review_required"),
        ({"limit": "0"}, "limit"),
        ({"model": "credit/two"}, "model"),
    ):
        response = client.get("/ui/decisions", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert f"<strong>{field}</strong>" in response.text
        assert "Traceback" not in response.text
    assert client.get("/ui/models", params={"page": "9"}).status_code == 422
    assert client.get("/ui/charts", params={"days": "x"}).status_code == 422
    assert client.get("/ui/charts", params={"deployment": "nope"}).status_code == 422
    assert client.get("/ui/reviews", params={"after": "-3"}).status_code == 422
    assert client.get("/ui/no-such-page").status_code == 404


FILTER_KEYS = st.sampled_from(
    ["deployment", "decision", "review_required", "since", "until", "model", "version", "before",
     "limit", "page"]
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=st.dictionaries(FILTER_KEYS, st.text(max_size=40), max_size=4))
def test_any_filter_gives_a_page_or_a_422_never_a_500(
    client: TestClient, params: dict[str, str]
) -> None:
    for path in ("/ui/decisions", "/ui/reviews", "/ui/models"):
        response = client.get(path, params=params)
        assert response.status_code in (200, 422), (path, params, response.text[:500])
        assert response.headers["content-type"].startswith("text/html")


def test_charts_page(client: TestClient, made: tuple[Path, list[Decision]]) -> None:
    page = ok(client, "/ui/charts")
    assert "Decisions per day" in page and "Override rate of reviews per model version" in page
    assert "Override rate of reviews per segment channel" in page
    assert f"Scores of {DEPLOYMENT}" in page and "review from 0.2" in page
    assert ok(client, "/ui/charts", deployment=DEPLOYMENT, days="3")


def test_traffic_shares_give_the_champion_the_rest() -> None:
    from mainspring.serving.deployments import Arm, Deployment
    from mainspring.ui.deployments import shares, traffic

    d = Deployment("x", (Arm("main", "m", "champion"), Arm("next", "m", "2", "canary", 10.0),
                         Arm("ab", "m", "3", "experiment", 15.0),
                         Arm("copy", "m", "4", "shadow", 50.0)))  # fmt: skip
    assert shares(d) == {"main": 75.0, "next": 10.0, "ab": 15.0, "copy": 50.0}
    assert traffic(d)[-1] == ("copy (shadow, m@4) copy", 50.0)


def test_model_page_charts_the_global_importance_stored_with_a_version(
    client: TestClient, project: Project
) -> None:  # last in this module: it adds to the shared project's history
    from mainspring.pipelines.importance import store_importance

    assert "not computed" in ok(client, "/ui/models/credit")
    rng = np.random.default_rng(9)
    sample = pd.DataFrame(rng.normal(size=(200, 3)), columns=NAMES)
    stored = store_importance(project.registry, "credit/1", sample, actor="alice")
    assert stored.importance is not None
    page = ok(client, "/ui/models/credit")
    assert "mean |SHAP| per feature (treeshap, 200 rows)" in page
    top = max(stored.importance.values, key=lambda f: stored.importance.values[f])
    assert f">{top}</text>" in page  # the largest bar's label
    assert "background sample" in page and stored.importance.background_digest in page


def test_an_unexpected_failure_is_a_500_page_without_a_traceback(
    project: Project, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mainspring.api.app import create_app

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(project.registry, "list_models", broken)
    # raise_server_exceptions=True: the error must reach the outer app's handler intact too
    with TestClient(create_app(project)) as strict, pytest.raises(RuntimeError, match="fire"):
        strict.get("/ui/models")
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        answer = client.get("/ui/models")
    assert answer.status_code == 500
    assert "the error is in its log" in answer.text and "disk on fire" not in answer.text
    assert "Traceback" not in answer.text
    assert any("unexpected error on /ui/models" in r.getMessage() for r in caplog.records)
