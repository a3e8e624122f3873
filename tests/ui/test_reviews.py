"""The review queue's forms: a review logged through the decision log's service, CSRF, roles,
bad fields refused with nothing written, and everything a person typed shown escaped."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from tests.ui.conftest import DEPLOYMENT, csrf_of

from mainspring.api.app import create_app
from mainspring.project import Project
from mainspring.records import Decision, Role

T0 = datetime(2026, 3, 1, tzinfo=UTC)
COUNTER = itertools.count(1)


def synthetic(project: Project) -> str:
    """Append a decision that waits for review; returns its id."""
    i = next(COUNTER)
    project.decisions.append(Decision(
        id=f"s-{i}", deployment="credit", at=T0 + timedelta(seconds=i), decision="refer",
        policy="credit@1", entity={"customer": f"c-{i}"}, model="m", version=1, score=0.5,
        review_required=True,
    ))  # fmt: skip
    return f"s-{i}"


def form(client: TestClient, path: str = "/ui/reviews") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


def test_override_form_logs_a_review_and_the_chain_still_verifies(
    client: TestClient, project: Project, made: tuple[Path, list[Decision]]
) -> None:
    queue = client.get("/ui/reviews").text
    flagged = [d for d in made[1] if d.review_required]
    assert flagged[0].id in queue
    target = flagged[0]
    other = "approve" if target.decision != "approve" else "decline"
    before = project.decisions.count()
    response = client.post(
        f"/ui/reviews/{target.id}",
        data={"csrf": csrf_of(queue), "action": "override", "decision": other,
              "reason_code": "DOC", "comment": "payslips checked"},
        headers={"X-Mainspring-User": "carol"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303, response.text
    (review,) = project.decisions.reviews(target.id)
    assert (review.reviewer, review.action.value, review.decision, review.reason_code) == (
        "carol", "override", other, "DOC"
    )  # fmt: skip
    assert project.decisions.final(target.id) == other
    assert project.decisions.count() == before + 1 and project.decisions.verify().ok
    shown = client.get(response.headers["location"]).text
    assert "override → <strong>" + other in shown and target.id in shown
    assert f'href="/ui/decisions/{target.id}"' not in shown.split("</div>", 1)[1]  # left the queue
    page = client.get(f"/ui/decisions/{target.id}").text
    assert "by carol (reason code <code>DOC</code>)" in page and "payslips checked" in page
    accepted = flagged[1]
    token = form(client, f"/ui/decisions/{accepted.id}")  # the decision page has the forms too
    done = client.post(f"/ui/reviews/{accepted.id}", data={"csrf": token, "action": "accept",
                                                           "reason_code": "OK"})  # fmt: skip
    assert done.status_code == 200 and project.decisions.final(accepted.id) == accepted.decision
    again = client.post(f"/ui/reviews/{accepted.id}", data={"csrf": token, "action": "accept",
                                                            "reason_code": "OK"})  # fmt: skip
    assert again.status_code == 409 and "already reviewed" in again.text


def test_bad_form_fields_are_4xx_pages_and_write_nothing(
    client: TestClient, project: Project, made: tuple[Path, list[Decision]]
) -> None:
    target = [d for d in made[1] if d.review_required][-1]
    token = form(client)
    before = project.decisions.count()
    for data, status, field in (
        ({"action": "maybe", "reason_code": "x"}, 422, "action"),
        ({"reason_code": "x"}, 422, "action"),
        ({"action": "accept"}, 422, "reason_code"),
        ({"action": "accept", "reason_code": "   "}, 422, "reason_code"),
        ({"action": "accept", "reason_code": "x" * 129}, 422, "reason_code"),
        ({"action": "override", "reason_code": "x"}, 422, "decision"),
        ({"action": "override", "reason_code": "x", "decision": target.decision}, 422, "decision"),
        ({"action": "accept", "reason_code": "x", "comment": "c" * 10_001}, 422, "comment"),
        ({"action": "accept", "reason_code": "x", "decision": "other"}, 422, "decision"),
    ):
        response = client.post(f"/ui/reviews/{target.id}", data={"csrf": token, **data})
        assert response.status_code == status, (data, response.text)
        assert f"<strong>{field}</strong>" in response.text, (data, response.text)
        assert "Traceback" not in response.text
    unknown = client.post("/ui/reviews/no-such-id", data={"csrf": token, "action": "accept",
                                                          "reason_code": "x"})  # fmt: skip
    assert unknown.status_code == 404
    assert project.decisions.count() == before and not project.decisions.reviews(target.id)


def test_a_post_without_the_csrf_token_is_refused(
    client: TestClient, project: Project, made: tuple[Path, list[Decision]]
) -> None:
    target = [d for d in made[1] if d.review_required][-1]
    token = form(client)
    before = project.decisions.count()
    fields = {"action": "accept", "reason_code": "x"}
    for data, cookies in (
        (fields, None),  # no field
        ({**fields, "csrf": "forged"}, None),  # a field that is not the cookie's
        ({**fields, "csrf": token}, {"mainspring_csrf": ""}),  # no cookie
    ):
        if cookies is not None:
            client.cookies.clear()
        response = client.post(f"/ui/reviews/{target.id}", data=data)
        assert response.status_code == 403, response.text
        assert "CSRF" in response.text
        form(client)  # the cookie again
    assert project.decisions.count() == before


def test_replay_says_plainly_why_it_cannot(
    client: TestClient, project: Project, made: tuple[Path, list[Decision]]
) -> None:
    logged = made[1][3]
    hashed = replace(logged, id="hashed-1",
                     features=tuple(replace(f, value="hmac-sha256:ab12") if f.name == "income"
                                    else f for f in logged.features))  # fmt: skip
    unknown_policy = replace(logged, id="no-policy-1", policy=f"{DEPLOYMENT}@99:abc")
    for d in (hashed, unknown_policy):
        project.decisions.append(d)
    token = form(client, "/ui/decisions/hashed-1")
    page = client.post("/ui/decisions/hashed-1/replay", data={"csrf": token}).text
    assert "It cannot be replayed" in page and "hashed as personal data" in page
    page = client.post("/ui/decisions/no-policy-1/replay", data={"csrf": token}).text
    assert "It cannot be replayed" in page and "no policy at that revision" in page
    assert client.post("/ui/decisions/nope/replay", data={"csrf": token}).status_code == 404


def test_replay_of_a_deleted_version_says_so_plainly(
    client: TestClient, project: Project, made: tuple[Path, list[Decision]]
) -> None:
    # last in this module: it deletes the model version the decisions were made with
    d = made[1][2]
    token = form(client, f"/ui/decisions/{d.id}")
    from mainspring.serving.deployments import DeploymentStore

    DeploymentStore(project.metadata).delete(DEPLOYMENT, actor="alice")
    project.registry.delete_alias("credit", "champion", actor="alice")
    project.registry.delete_version("credit", 1, actor="carol", reason="retired")
    response = client.post(f"/ui/decisions/{d.id}/replay", data={"csrf": token})
    assert response.status_code == 200, response.text
    assert "It cannot be replayed" in response.text
    assert re.search(r"deleted on .* by carol \(retired\)", response.text), response.text


# --- tokens, roles and escaping, on a project of synthetic decisions ------------------------


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("plain")
    (root / "mainspring.yaml").write_text("audit:\n  durability: process\n", encoding="utf-8")
    with Project.open(root) as project:
        yield project


@pytest.fixture(scope="module")
def plain_client(plain: Project) -> Iterator[TestClient]:
    with TestClient(create_app(plain), raise_server_exceptions=False) as client:
        yield client


WORDS = st.text(min_size=1, max_size=80).filter(
    lambda s: s.strip() != "" and all(c.isprintable() for c in s)
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(code=WORDS, comment=st.text(max_size=300), decision=WORDS)
def test_whatever_a_reviewer_types_is_shown_escaped(
    plain: Project, plain_client: TestClient, code: str, comment: str, decision: str
) -> None:
    # arbitrary text, each with markup that would show unescaped if anything were not escaped
    code, comment, decision = code + "<b>", comment + "<script>x</script>", decision + '"><i>'
    decision_id = synthetic(plain)
    token = form(plain_client)
    response = plain_client.post(f"/ui/reviews/{decision_id}", data={
        "csrf": token, "reason_code": code, "comment": comment, "action": "override",
        "decision": decision})  # fmt: skip
    assert response.status_code == 200, response.text
    (review,) = plain.decisions.reviews(decision_id)
    assert (review.reason_code, review.decision) == (code.strip(), decision.strip())
    assert review.comment == comment
    for page in (response.text, plain_client.get(f"/ui/decisions/{decision_id}").text):
        assert str(escape(review.reason_code)) in page
        assert str(escape(review.decision)) in page
        assert str(escape(comment)) in page
        assert "<b>" not in page and "<script>" not in page and '"><i>' not in page


def test_with_tokens_pages_need_a_login_and_reviews_the_approver_role(
    tmp_path: Path,
) -> None:
    (tmp_path / "mainspring.yaml").write_text("audit:\n  durability: process\n", encoding="utf-8")
    with Project.open(tmp_path) as project:
        decision_id = synthetic(project)
        viewer = project.tokens.create("vic", [Role.VIEWER], actor="admin")
        approver = project.tokens.create("ann", [Role.APPROVER], actor="admin")
        with TestClient(create_app(project), raise_server_exceptions=False) as client:
            anonymous = client.get("/ui/decisions")
            assert anonymous.status_code == 401 and "/ui/login" in anonymous.text
            login = client.get("/ui/login")
            assert login.status_code == 200 and 'type="password"' in login.text
            token = csrf_of(login.text)
            bad = client.post("/ui/login", data={"csrf": token, "token": "ms_wrong"})
            assert bad.status_code == 401 and "not valid" in bad.text
            no_csrf = client.post("/ui/login", data={"token": viewer})
            assert no_csrf.status_code == 403
            done = client.post("/ui/login", data={"csrf": token, "token": viewer,
                                                  "next": "https://elsewhere.example/"},
                               follow_redirects=False)  # fmt: skip
            assert done.status_code == 303 and done.headers["location"] == "/ui"
            cookie = done.headers["set-cookie"]
            assert "mainspring_token=" in cookie and "HttpOnly" in cookie
            assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
            page = client.get("/ui/reviews")
            assert page.status_code == 200 and "signed in as <strong>vic</strong>" in page.text
            assert decision_id in page.text
            refused = client.post(f"/ui/reviews/{decision_id}", data={
                "csrf": csrf_of(page.text), "action": "accept", "reason_code": "ok"})  # fmt: skip
            assert refused.status_code == 403
            assert "vic may not review: that needs the approver role" in refused.text
            assert not project.decisions.reviews(decision_id)
            out = client.post("/ui/logout", data={"csrf": csrf_of(page.text)},
                              follow_redirects=False)  # fmt: skip
            assert out.status_code == 303
            assert client.get("/ui/reviews").status_code == 401

            headers = {"Authorization": f"Bearer {approver}"}
            page = client.get("/ui/reviews", headers=headers)
            ok = client.post(f"/ui/reviews/{decision_id}", headers=headers, data={
                "csrf": csrf_of(page.text), "action": "accept", "reason_code": "ok"})  # fmt: skip
            assert ok.status_code == 200, ok.text
            assert project.decisions.reviews(decision_id)[0].reviewer == "ann"
