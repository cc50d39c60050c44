"""Server-rendered pages through the test client: forms, CSRF, errors, escaping, headers."""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import PASSWORD, csrf, make_forum, make_session, new_client, register, sign_in_organizer


def _form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match.group(1)


def test_programme_page_lists_sessions_and_filters(app: Starlette, client: TestClient) -> None:
    """The programme page shows the forum, its sessions and a labelled filter form; filters narrow it."""
    sign_in_organizer(app, client)
    forum = make_forum(client)
    make_session(client, forum["id"], title="E-health workshop")
    make_session(client, forum["id"], title="Youth TalkX", type="talkx", track="youth")
    page = client.get("/")
    assert page.status_code == 200
    assert "WSIS Test Forum" in page.text
    assert "E-health workshop" in page.text and "Youth TalkX" in page.text
    for field in ("q", "day", "type", "track", "action_line", "sdg", "language"):
        assert f'<label for="{field}">' in page.text
    filtered = client.get("/?track=youth&q=")
    assert "Youth TalkX" in filtered.text and "E-health workshop" not in filtered.text
    assert "1 session<" in filtered.text


def test_bad_filter_on_the_page_is_explained_not_a_crash(client: TestClient) -> None:
    """An invalid filter value shows the page with an alert naming it (422)."""
    page = client.get("/?sdg=99")
    assert page.status_code == 422
    assert 'role="alert"' in page.text and "sdg" in page.text


def test_untrusted_text_is_rendered_as_text(app: Starlette, client: TestClient) -> None:
    """A session title with markup appears escaped on the programme and session pages."""
    sign_in_organizer(app, client)
    forum = make_forum(client)
    evil = '<img src=x onerror="alert(1)">'
    session = make_session(client, forum["id"], title=evil, description="<script>alert(2)</script>")
    for path in ("/", f"/sessions/{session['id']}"):
        html = client.get(path).text
        assert evil not in html and "<script>alert(2)" not in html
        assert "&lt;img src=x onerror=" in html


def test_security_headers_on_pages(client: TestClient) -> None:
    """Pages carry a strict CSP, nosniff and framing protection."""
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_register_form_shows_field_errors_and_keeps_values(client: TestClient) -> None:
    """A bad registration re-renders the form with the error next to the field and the values kept."""
    token = _form_token(client.get("/register").text)
    response = client.post(
        "/register",
        data={"csrf_token": token, "name": "Ana", "email": "ana@example.org", "password": "short", "country": "BR"},
    )
    assert response.status_code == 422
    assert 'id="password-error"' in response.text
    assert 'aria-describedby="password-error"' in response.text
    assert 'value="ana@example.org"' in response.text
    assert "short" not in response.text.split('id="password"')[1].split(">")[0]
    token = _form_token(response.text)
    no_consent = client.post(
        "/register",
        data={"csrf_token": token, "name": "Ana", "email": "ana@example.org", "password": PASSWORD, "country": "BR"},
    )
    assert no_consent.status_code == 422
    assert 'aria-describedby="country-error"' in no_consent.text
    assert client.get("/api/me").status_code == 401


def test_register_sign_out_and_sign_in_through_forms(client: TestClient) -> None:
    """The forms register, sign out and sign in, redirecting to a local next page only."""
    token = _form_token(client.get("/register").text)
    response = client.post(
        "/register",
        data={
            "csrf_token": token,
            "name": "Ana Lima",
            "email": "ana@example.org",
            "password": PASSWORD,
            "country": "BR",
            "country_consent": "on",
            "next": "/profile",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/profile"
    profile = client.get("/profile")
    assert "ana@example.org" in profile.text and "region: Americas" in profile.text
    client.post("/signout", data={"csrf_token": _form_token(profile.text)})
    assert client.get("/api/me").status_code == 401
    signin = client.get("/signin")
    response = client.post(
        "/signin",
        data={
            "csrf_token": _form_token(signin.text),
            "email": "ana@example.org",
            "password": PASSWORD,
            "next": "//evil.example.org/",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    wrong = client.post(
        "/signin",
        data={
            "csrf_token": _form_token(client.get("/signin").text),
            "email": "ana@example.org",
            "password": "wrong-password",
        },
    )
    assert wrong.status_code == 401 and "wrong email or password" in wrong.text


def test_forms_without_csrf_token_are_refused(client: TestClient) -> None:
    """A form post without the token (a cross-site request) is 403 and changes nothing."""
    response = client.post("/register", data={"name": "X", "email": "x@example.org", "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/api/me").status_code == 401


def test_profile_form_saves_and_consent_unticked_erases(client: TestClient) -> None:
    """Saving the profile with a consent unticked erases that answer."""
    register(client, gender="man", gender_consent=True, country="KZ", country_consent=True)
    page = client.get("/profile")
    response = client.post(
        "/profile",
        data={
            "csrf_token": _form_token(page.text),
            "name": "Pat",
            "gender": "man",
            "country": "KZ",
            "country_consent": "on",
        },
    )
    assert response.status_code == 200
    me = client.get("/api/me").json()
    assert me["gender"] is None and me["country"] == "KZ" and me["name"] == "Pat"


def test_session_page_agenda_buttons(app: Starlette, client: TestClient) -> None:
    """A signed-in person adds a session to their agenda from its page and sees it in the profile."""
    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"], title="Knowledge café")
    with new_client(app) as person:
        page = person.get(f"/sessions/{session['id']}")
        assert "To add this session to your agenda, sign in or register:" in page.text
        register(person)
        page = person.get(f"/sessions/{session['id']}")
        person.post(
            f"/sessions/{session['id']}/registration", data={"csrf_token": _form_token(page.text), "action": "register"}
        )
        assert "This session is in your agenda" in person.get(f"/sessions/{session['id']}").text
        assert "Knowledge café" in person.get("/profile").text


def test_profile_page_delete_needs_password(client: TestClient) -> None:
    """The delete form refuses a wrong password and deletes with the right one."""
    register(client)
    page = client.get("/profile")
    client.post("/profile/delete", data={"csrf_token": _form_token(page.text), "password": "wrong-password"})
    assert client.get("/api/me").status_code == 200
    client.post("/profile/delete", data={"csrf_token": _form_token(client.get("/profile").text), "password": PASSWORD})
    assert client.get("/api/me").status_code == 401


def test_unknown_pages_are_friendly_404s(client: TestClient) -> None:
    """A missing page is an HTML 404; a missing session is too."""
    for path in ("/nowhere", "/sessions/12345"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Not found" in response.text and "Back to the programme" in response.text


def test_empty_platform_page(client: TestClient) -> None:
    """With no forum yet the programme page says what to do."""
    page = client.get("/")
    assert page.status_code == 200 and "No forum yet" in page.text
    assert csrf(client)


def test_static_files_are_gzipped_pages_are_not(client: TestClient) -> None:
    """Scripts go compressed to a browser that asks (and as they are to one that does not); pages, which hold
    CSRF tokens beside text from the request, never do (BREACH)."""
    from pathlib import Path

    original = (Path(__file__).resolve().parents[2] / "web" / "static" / "common.js").read_bytes()
    zipped = client.get("/static/common.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(original) / 2
    assert zipped.content == original  # httpx undoes the gzip: the same bytes arrive
    plain = client.get("/static/common.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == original
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and "content-encoding" not in page.headers
