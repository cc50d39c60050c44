"""Speaker and moderator invitation links: create, accept once, expire."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server.storage.models import Invitation
from server.storage.types import utcnow
from tests.conftest import csrf, make_forum, make_session, new_client, register, sign_in_organizer


def _invite(app: Starlette, client: TestClient, role: str = "speaker", **extra: object) -> tuple[dict, dict]:
    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"])
    response = client.post(
        f"/api/sessions/{session['id']}/invitations", json={"role": role, **extra}, headers=csrf(client)
    )
    assert response.status_code == 201, response.text
    return session, response.json()


def test_accepting_an_invitation_gives_the_role_once(app: Starlette, client: TestClient) -> None:
    """The invitee becomes speaker of the session; the link cannot be used a second time."""
    session, invitation = _invite(app, client, expires_in_hours=2)
    assert invitation["url"].startswith("http://127.0.0.1:8000/invitations/")
    with new_client(app) as invitee:
        register(invitee, email="speaker@example.org", name="Sam Speaker")
        assert invitee.get(f"/api/invitations/{invitation['token']}").json()["role"] == "speaker"
        accepted = invitee.post(f"/api/invitations/{invitation['token']}/accept", headers=csrf(invitee))
        assert accepted.status_code == 200
        assert [p["name"] for p in invitee.get(f"/api/sessions/{session['id']}").json()["speakers"]] == ["Sam Speaker"]
        assert invitee.get("/api/me").json()["roles"][0]["role"] == "speaker"
        again = invitee.post(f"/api/invitations/{invitation['token']}/accept", headers=csrf(invitee))
        assert again.status_code == 409


def test_expired_invitation_is_gone(app: Starlette, client: TestClient) -> None:
    """After its expiry the link answers 410 and grants nothing."""
    session, invitation = _invite(app, client, role="moderator")

    def expire(db):  # noqa: ANN001, ANN202
        for row in db.exec(select(Invitation)).all():
            row.expires_at = utcnow() - timedelta(seconds=1)
            db.add(row)

    app.state.db.run_write(expire)
    with new_client(app) as invitee:
        register(invitee, email="late@example.org")
        response = invitee.post(f"/api/invitations/{invitation['token']}/accept", headers=csrf(invitee))
        assert response.status_code == 410
        assert "expired" in response.json()["error"]["message"]
        assert invitee.get(f"/api/sessions/{session['id']}").json()["moderators"] == []
        page = invitee.get(f"/invitations/{invitation['token']}")
        assert page.status_code == 410 and "expired" in page.text


def test_unknown_token_and_signed_out_acceptance(app: Starlette, client: TestClient) -> None:
    """A made-up token is 404; accepting while signed out is 401."""
    _, invitation = _invite(app, client)
    with new_client(app) as stranger:
        assert stranger.get("/api/invitations/not-a-token").status_code == 404
        response = stranger.post(f"/api/invitations/{invitation['token']}/accept", headers=csrf(stranger))
        assert response.status_code == 401


def test_only_a_hash_of_the_token_is_stored(app: Starlette, client: TestClient) -> None:
    """The database holds the SHA-256 of the token, never the token itself."""
    _, invitation = _invite(app, client)
    stored = app.state.db.run_read(lambda db: db.exec(select(Invitation)).one())
    assert stored.token_hash != invitation["token"]
    assert len(stored.token_hash) == 64


def test_invitation_page_accepts_through_the_form(app: Starlette, client: TestClient) -> None:
    """The invitation page shows the role and accepts with a CSRF-protected form."""
    session, invitation = _invite(app, client, role="moderator")
    with new_client(app) as invitee:
        register(invitee, email="mod@example.org", name="Mo Moderator")
        page = invitee.get(f"/invitations/{invitation['token']}")
        assert page.status_code == 200 and "moderator" in page.text
        token = invitee.get("/api/auth/csrf").json()["csrf_token"]
        response = invitee.post(
            f"/invitations/{invitation['token']}", data={"csrf_token": token}, follow_redirects=False
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/sessions/{session['id']}"
        assert invitee.get(f"/api/sessions/{session['id']}").json()["moderators"][0]["name"] == "Mo Moderator"


def test_organizer_creates_a_link_from_the_session_page(app: Starlette, client: TestClient) -> None:
    """The session page offers organizers (only) a form that shows a working invitation link once."""
    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"])
    page = client.get(f"/sessions/{session['id']}")
    assert "Create a speaker link" in page.text
    token = client.get("/api/auth/csrf").json()["csrf_token"]
    shown = client.post(f"/sessions/{session['id']}/invitations", data={"csrf_token": token, "role": "speaker"})
    link = re.search(r'id="invitation-url" readonly value="([^"]+)"', shown.text).group(1)
    assert "Create a speaker link" in shown.text
    assert link not in client.get(f"/sessions/{session['id']}").text  # shown once
    with new_client(app) as invitee:
        register(invitee, email="s@example.org", name="Sol Speaker")
        invitee.post(
            link.replace("http://127.0.0.1:8000", ""),
            data={"csrf_token": invitee.get("/api/auth/csrf").json()["csrf_token"]},
        )
        assert invitee.get(f"/api/sessions/{session['id']}").json()["speakers"][0]["name"] == "Sol Speaker"
        assert "Create a speaker link" not in invitee.get(f"/sessions/{session['id']}").text
        refused = invitee.post(
            f"/sessions/{session['id']}/invitations",
            data={"csrf_token": invitee.get("/api/auth/csrf").json()["csrf_token"], "role": "speaker"},
        )
        assert refused.status_code == 403
