"""Accounts over the HTTP API: registration, sign-in, CSRF, profiles with consent, export, deletion."""

from __future__ import annotations

from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server.storage.models import Person, Registration
from tests.conftest import PASSWORD, csrf, make_forum, make_session, new_client, register, sign_in_organizer


def test_register_signs_in_and_hashes_the_password(app: Starlette, client: TestClient) -> None:
    """Registration creates the account, signs the browser in and stores an Argon2id hash, never the password."""
    body = register(client, country="CH", country_consent=True)
    assert body["email"] == "pat@example.org"
    assert body["region"] == "europe"
    assert client.get("/api/me").json()["id"] == body["id"]
    person = app.state.db.run_read(lambda db: db.get(Person, body["id"]))
    assert person.password_hash.startswith("$argon2id$")
    assert PASSWORD not in person.password_hash


def test_duplicate_email_is_a_conflict_naming_the_field(client: TestClient) -> None:
    """A second account with the same email (any case) gets 409 with field 'email'."""
    register(client)
    with TestClient(client.app, base_url=str(client.base_url)) as other:
        response = other.post(
            "/api/auth/register",
            json={"email": "PAT@example.org", "password": PASSWORD, "name": "Other"},
            headers=csrf(other),
        )
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == [{"field": "email", "reason": "already registered"}]


def test_invalid_registration_names_each_field(client: TestClient) -> None:
    """Bad email, short password, unknown country, an unknown key: 422 naming each; nothing stored."""
    response = client.post(
        "/api/auth/register",
        json={"email": "not-an-email", "password": "short", "name": "X", "country": "XX", "role": "organizer"},
        headers=csrf(client),
    )
    assert response.status_code == 422
    fields = {f["field"]: f["reason"] for f in response.json()["error"]["fields"]}
    assert set(fields) == {"email", "password", "country", "role"}
    assert "unknown country code" in fields["country"]
    assert fields["role"] == "unknown field"
    assert client.get("/api/me").status_code == 401


def test_demographics_need_their_own_consent(client: TestClient) -> None:
    """Gender without gender_consent is refused, even when another consent is given."""
    response = client.post(
        "/api/auth/register",
        json={"email": "g@example.org", "password": PASSWORD, "name": "G", "gender": "woman", "country_consent": True},
        headers=csrf(client),
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "gender"


def test_withdrawing_consent_erases_the_value(client: TestClient) -> None:
    """Setting a consent to false erases the value it guards and its consent time."""
    register(client, gender="woman", gender_consent=True, stakeholder_type="academia", stakeholder_consent=True)
    response = client.patch("/api/me", json={"gender_consent": False}, headers=csrf(client))
    assert response.status_code == 200
    body = response.json()
    assert body["gender"] is None and body["gender_consent"] is False
    assert body["stakeholder_type"] == "academia"
    cleared = client.patch("/api/me", json={"stakeholder_type": None}, headers=csrf(client)).json()
    assert cleared["stakeholder_type"] is None and cleared["stakeholder_consent"] is True
    refused = client.patch("/api/me", json={"gender": "man"}, headers=csrf(client))
    assert refused.status_code == 422 and refused.json()["error"]["fields"][0]["field"] == "gender"


def test_sign_in_and_wrong_password(client: TestClient) -> None:
    """Sign-out ends the session; a wrong password gets 401 without saying which part was wrong."""
    register(client)
    assert client.post("/api/auth/signout", headers=csrf(client)).status_code == 204
    assert client.get("/api/me").status_code == 401
    wrong = client.post(
        "/api/auth/signin", json={"email": "pat@example.org", "password": "nope-nope-nope"}, headers=csrf(client)
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "wrong email or password"
    unknown = client.post(
        "/api/auth/signin", json={"email": "who@example.org", "password": PASSWORD}, headers=csrf(client)
    )
    assert unknown.json()["error"]["message"] == "wrong email or password"
    right = client.post(
        "/api/auth/signin", json={"email": "pat@example.org", "password": PASSWORD}, headers=csrf(client)
    )
    assert right.status_code == 200
    assert client.get("/api/me").json()["email"] == "pat@example.org"


def test_unsafe_requests_without_the_csrf_token_are_refused(client: TestClient) -> None:
    """POST/PATCH without X-CSRF-Token, or with another session's token, get 403 code 'csrf'."""
    register(client)
    missing = client.patch("/api/me", json={"name": "Changed"})
    assert missing.status_code == 403
    assert missing.json()["error"]["code"] == "csrf"
    forged = client.patch("/api/me", json={"name": "Changed"}, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    assert client.get("/api/me").json()["name"] == "Pat Participant"


def test_session_cookie_is_signed_and_http_only(client: TestClient) -> None:
    """The sign-in cookie is HttpOnly, SameSite=Lax, and a tampered cookie signs nobody in."""
    response = client.post(
        "/api/auth/register",
        json={"email": "c@example.org", "password": PASSWORD, "name": "C"},
        headers=csrf(client),
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    value = client.cookies.get("forumlive_session")
    client.cookies.clear()
    client.cookies.set("forumlive_session", value[:-4] + "AAAA")
    assert client.get("/api/me").status_code == 401


def test_export_contains_my_data_and_no_password_hash(app: Starlette, client: TestClient) -> None:
    """The JSON export lists the profile and registrations, and leaves the hash out."""
    sign_in_organizer(app, client)
    forum = make_forum(client)
    session = make_session(client, forum["id"])
    client.post("/api/auth/signout", headers=csrf(client))
    register(client, country="SN", country_consent=True)
    assert client.post(f"/api/sessions/{session['id']}/registration", headers=csrf(client)).status_code == 204
    response = client.get("/api/me/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    assert data["person"]["email"] == "pat@example.org"
    assert data["person"]["country"] == "SN"
    assert "password_hash" not in data["person"]
    assert [r["session_id"] for r in data["registrations"]] == [session["id"]]


def test_delete_account_needs_the_password_and_removes_everything(app: Starlette, client: TestClient) -> None:
    """A wrong password deletes nothing; the right one removes the person and their registrations."""
    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"])
    client.post("/api/auth/signout", headers=csrf(client))
    me = register(client)
    client.post(f"/api/sessions/{session['id']}/registration", headers=csrf(client))
    wrong = client.request("DELETE", "/api/me", json={"password": "not my password"}, headers=csrf(client))
    assert wrong.status_code == 401
    assert app.state.db.run_read(lambda db: db.get(Person, me["id"])) is not None
    right = client.request("DELETE", "/api/me", json={"password": PASSWORD}, headers=csrf(client))
    assert right.status_code == 204
    assert app.state.db.run_read(lambda db: db.get(Person, me["id"])) is None
    remaining = app.state.db.run_read(lambda db: db.exec(select(Registration)).all())
    assert remaining == []
    assert client.get("/api/me").status_code == 401


def test_malformed_and_oversized_bodies(client: TestClient) -> None:
    """Broken JSON, duplicate keys, a non-object and a body over 1 MiB get clear 4xx errors."""
    headers = {**csrf(client), "Content-Type": "application/json"}
    broken = client.post("/api/auth/register", content=b'{"email": ', headers=headers)
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["error"]["message"]
    duplicate = client.post(
        "/api/auth/register",
        content=b'{"email": "a@b.org", "email": "c@d.org", "password": "0123456789", "name": "X"}',
        headers=headers,
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["error"]["fields"] == [{"field": "email", "reason": "duplicate key"}]
    listed = client.post("/api/auth/register", content=b"[1, 2]", headers=headers)
    assert listed.status_code == 422 and "JSON object" in listed.json()["error"]["message"]
    huge = client.post("/api/auth/register", content=b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}', headers=headers)
    assert huge.status_code == 413


def test_a_second_browser_is_not_signed_in(app: Starlette, client: TestClient) -> None:
    """Sign-in state belongs to one browser's cookie."""
    register(client)
    with new_client(app) as other:
        assert other.get("/api/me").status_code == 401
