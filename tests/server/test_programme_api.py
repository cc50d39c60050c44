"""The programme over the HTTP API: CRUD for organizers, filters for everyone, agenda, iCalendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import csrf, make_forum, make_session, register, session_body, sign_in_organizer


@pytest.fixture
def organizer(app: Starlette, client: TestClient) -> TestClient:
    sign_in_organizer(app, client)
    return client


def test_organizer_creates_reads_updates_and_deletes_a_session(organizer: TestClient) -> None:
    """The whole life of a session through the API, with its Action Lines, SDGs and tags."""
    forum = make_forum(organizer)
    created = make_session(organizer, forum["id"], tags=["COVID-19", "e-health"], track="older_persons", sdgs=[3, 3])
    assert created["type_label"] == "Thematic workshop"
    assert created["tags"] == ["covid-19", "e-health"]
    assert created["sdgs"] == [3]
    assert created["track_label"] == "ICTs and Older Persons"
    fetched = organizer.get(f"/api/sessions/{created['id']}").json()
    assert fetched == created
    changed = organizer.patch(
        f"/api/sessions/{created['id']}",
        json={"title": "Renamed", "action_lines": ["c1", "C11"], "track": None},
        headers=csrf(organizer),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "Renamed"
    assert changed.json()["action_lines"] == ["C1", "C11"]
    assert changed.json()["track"] is None
    assert changed.json()["sdgs"] == [3]
    deleted = organizer.delete(f"/api/sessions/{created['id']}", headers=csrf(organizer))
    assert deleted.status_code == 204
    assert organizer.get(f"/api/sessions/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"sdgs": [18]}, "sdgs", "SDG 18 does not exist"),
        ({"action_lines": ["C12"]}, "action_lines", "not a WSIS Action Line"),
        ({"ends_at": "2026-03-02T08:00:00+00:00"}, "ends_at", "after starts_at"),
        ({"starts_at": "2026-03-02T09:00:00"}, "starts_at", "timezone"),
        ({"type": "party"}, "type", "Input should be"),
        ({"language": "xx"}, "language", "ISO 639-1"),
        ({"tags": ["no spaces allowed"]}, "tags", "lower-case"),
        ({"capacity": 0}, "capacity", "greater than or equal to 1"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_invalid_sessions_name_the_field_and_write_nothing(
    organizer: TestClient, change: dict, field: str, reason: str
) -> None:
    """Each bad value gets 422 naming the field and the reason; the programme stays empty."""
    forum = make_forum(organizer)
    response = organizer.post("/api/sessions", json=session_body(forum["id"], **change), headers=csrf(organizer))
    assert response.status_code == 422, response.text
    errors = response.json()["error"]["fields"]
    assert any(e["field"] == field and reason in e["reason"] for e in errors), errors
    assert organizer.get("/api/sessions").json()["total"] == 0


def test_update_that_puts_end_before_start_is_refused_and_rolled_back(organizer: TestClient) -> None:
    """A PATCH that would end a session before it starts changes nothing."""
    forum = make_forum(organizer)
    created = make_session(organizer, forum["id"])
    response = organizer.patch(
        f"/api/sessions/{created['id']}",
        json={"title": "Changed", "starts_at": "2026-03-02T12:00:00+00:00"},
        headers=csrf(organizer),
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "ends_at"
    assert organizer.get(f"/api/sessions/{created['id']}").json()["title"] == created["title"]


def test_participants_and_anonymous_visitors_cannot_change_the_programme(app: Starlette, client: TestClient) -> None:
    """Every organizer endpoint answers 403 to a participant and 401 to nobody, even with a bad body."""
    sign_in_organizer(app, client)
    forum = make_forum(client)
    session = make_session(client, forum["id"])
    client.post("/api/auth/signout", headers=csrf(client))
    calls = [
        ("POST", "/api/forums", {}),
        ("PATCH", f"/api/forums/{forum['id']}", {"name": "x"}),
        ("DELETE", f"/api/forums/{forum['id']}", None),
        ("POST", "/api/sessions", {}),
        ("PATCH", f"/api/sessions/{session['id']}", {"title": "x"}),
        ("DELETE", f"/api/sessions/{session['id']}", None),
        ("POST", f"/api/sessions/{session['id']}/invitations", {"role": "moderator"}),
        ("POST", f"/api/forums/{forum['id']}/import?format=json", None),
    ]
    for method, path, body in calls:
        assert client.request(method, path, json=body, headers=csrf(client)).status_code == 401, path
    register(client)
    for method, path, body in calls:
        response = client.request(method, path, json=body, headers=csrf(client))
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"
    assert client.get(f"/api/sessions/{session['id']}").json()["title"] == session["title"]


def test_unknown_ids_are_404(organizer: TestClient) -> None:
    """Unknown forum and session ids get a JSON 404."""
    assert organizer.get("/api/sessions/999").status_code == 404
    assert organizer.get("/api/forums/999").json()["error"]["code"] == "not_found"
    response = organizer.post("/api/sessions", json=session_body(999), headers=csrf(organizer))
    assert response.status_code == 404


@pytest.fixture
def programme(organizer: TestClient) -> dict:
    """Four sessions in a Geneva-time forum, chosen so that each filter selects a different set."""
    forum = make_forum(organizer, tz="Europe/Zurich")
    day1 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Geneva
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 00:30 on 3 March in Geneva
    specs = {
        "health": {
            "title": "E-health after COVID-19",
            "type": "thematic_workshop",
            "action_lines": ["C7"],
            "sdgs": [3],
            "tags": ["covid-19"],
            "starts_at": day1,
        },
        "youth": {
            "title": "Youth hackathon",
            "type": "hackathon",
            "track": "youth",
            "action_lines": ["C4"],
            "sdgs": [4, 8],
            "starts_at": day1 + timedelta(hours=2),
            "language": "fr",
        },
        "late": {
            "title": "Late TalkX on security",
            "type": "talkx",
            "action_lines": ["C5"],
            "sdgs": [16],
            "starts_at": late,
            "description": "Trust and cybersecurity",
        },
        "prize": {
            "title": "Prize ceremony",
            "type": "prize_ceremony",
            "action_lines": ["C1", "C7"],
            "sdgs": [17],
            "starts_at": day1 + timedelta(days=2),
        },
    }
    ids = {}
    for key, spec in specs.items():
        start = spec.pop("starts_at")
        spec.update(starts_at=start.isoformat(), ends_at=(start + timedelta(hours=1)).isoformat())
        ids[key] = make_session(organizer, forum["id"], **spec)["id"]
    return {"forum": forum, "ids": ids}


def _titles_for(client: TestClient, query: str) -> set[int]:
    response = client.get(f"/api/sessions?{query}")
    assert response.status_code == 200, response.text
    return {s["id"] for s in response.json()["sessions"]}


def test_programme_filters(organizer: TestClient, programme: dict) -> None:
    """Each filter narrows the programme to exactly the matching sessions."""
    ids = programme["ids"]
    assert _titles_for(organizer, "") == set(ids.values())
    assert _titles_for(organizer, "type=hackathon") == {ids["youth"]}
    assert _titles_for(organizer, "track=youth") == {ids["youth"]}
    assert _titles_for(organizer, "action_line=c7") == {ids["health"], ids["prize"]}
    assert _titles_for(organizer, "sdg=16") == {ids["late"]}
    assert _titles_for(organizer, "language=fr") == {ids["youth"]}
    assert _titles_for(organizer, "tag=covid-19") == {ids["health"]}
    assert _titles_for(organizer, "q=cyber") == {ids["late"]}
    assert _titles_for(organizer, "q=COVID") == {ids["health"]}
    assert _titles_for(organizer, "q=100%25") == set()
    assert _titles_for(organizer, "type=talkx&sdg=3") == set()


def test_day_filter_uses_the_forum_zone_or_the_viewers(organizer: TestClient, programme: dict) -> None:
    """A session at 23:30 UTC is on 3 March in Geneva but on 2 March in New York."""
    ids = programme["ids"]
    assert _titles_for(organizer, "day=2026-03-02") == {ids["health"], ids["youth"]}
    assert _titles_for(organizer, "day=2026-03-03") == {ids["late"]}
    assert _titles_for(organizer, "day=2026-03-02&tz=America/New_York") == {ids["health"], ids["youth"], ids["late"]}


def test_bad_filters_are_422(organizer: TestClient, programme: dict) -> None:
    """Unknown filter values and unknown parameters are named in the error."""
    for query, field in [
        ("sdg=18", "sdg"),
        ("day=2026-13-01", "day"),
        ("tz=Mars/Olympus", "tz"),
        ("action_line=C12", "action_line"),
        ("colour=red", "colour"),
    ]:
        response = organizer.get(f"/api/sessions?{query}")
        assert response.status_code == 422, query
        assert response.json()["error"]["fields"][0]["field"] == field


def test_registration_agenda_and_capacity(app: Starlette, organizer: TestClient) -> None:
    """People add sessions to their agenda; a full session says so; the agenda exports as iCalendar."""
    forum = make_forum(organizer)
    small = make_session(organizer, forum["id"], title="Small café", capacity=1, type="knowledge_cafe")
    organizer.post("/api/auth/signout", headers=csrf(organizer))
    register(organizer, email="first@example.org")
    assert organizer.post(f"/api/sessions/{small['id']}/registration", headers=csrf(organizer)).status_code == 204
    assert organizer.post(f"/api/sessions/{small['id']}/registration", headers=csrf(organizer)).status_code == 204
    assert organizer.get(f"/api/sessions/{small['id']}").json()["registered"] == 1
    agenda = organizer.get("/api/me/agenda.ics")
    assert agenda.headers["content-type"].startswith("text/calendar")
    events = [c for c in Calendar.from_ical(agenda.content).walk("VEVENT")]
    assert [str(e["summary"]) for e in events] == ["Small café"]
    organizer.post("/api/auth/signout", headers=csrf(organizer))
    register(organizer, email="second@example.org")
    full = organizer.post(f"/api/sessions/{small['id']}/registration", headers=csrf(organizer))
    assert full.status_code == 409
    assert "full" in full.json()["error"]["message"]
    assert organizer.get("/api/me/agenda").json() == []


def test_session_icalendar(organizer: TestClient) -> None:
    """One session as a valid iCalendar event with its times in UTC and a link to its page."""
    forum = make_forum(organizer)
    session = make_session(organizer, forum["id"], title="Opening")
    response = organizer.get(f"/api/sessions/{session['id']}/calendar.ics")
    assert response.status_code == 200
    event = next(iter(Calendar.from_ical(response.content).walk("VEVENT")))
    assert str(event["summary"]) == "Opening"
    assert event.decoded("dtstart") == datetime.fromisoformat(session["starts_at"])
    assert str(event["url"]).endswith(f"/sessions/{session['id']}")


def test_forum_crud_and_validation(organizer: TestClient) -> None:
    """Forums: duplicate slug 409, end before start 422, unknown time zone 422."""
    forum = make_forum(organizer)
    again = organizer.post(
        "/api/forums",
        json={"slug": forum["slug"], "name": "x", "start_date": "2026-01-01", "end_date": "2026-01-02"},
        headers=csrf(organizer),
    )
    assert again.status_code == 409
    backwards = organizer.post(
        "/api/forums",
        json={"slug": "b", "name": "x", "start_date": "2026-01-05", "end_date": "2026-01-02"},
        headers=csrf(organizer),
    )
    assert backwards.json()["error"]["fields"][0]["field"] == "end_date"
    zone = organizer.post(
        "/api/forums",
        json={"slug": "c", "name": "x", "start_date": "2026-01-01", "end_date": "2026-01-02", "timezone": "Geneva"},
        headers=csrf(organizer),
    )
    assert zone.json()["error"]["fields"][0]["field"] == "timezone"
    assert [f["slug"] for f in organizer.get("/api/forums").json()] == [forum["slug"]]


def test_openapi_document_describes_every_route(client: TestClient) -> None:
    """/api/openapi.json is OpenAPI 3.1 and lists every API path with its schemas."""
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path, method in [
        ("/api/sessions", "get"),
        ("/api/sessions", "post"),
        ("/api/sessions/{session_id}", "patch"),
        ("/api/forums/{forum_id}/import", "post"),
        ("/api/auth/register", "post"),
        ("/healthz", "get"),
    ]:
        assert method in paths[path], (path, method)
    params = {p["name"] for p in paths["/api/sessions"]["get"]["parameters"]}
    assert {"day", "type", "track", "action_line", "sdg", "language", "q"} <= params
    schemas = document["components"]["schemas"]
    assert "SessionCreate" in schemas and "Programme" in schemas
    for path_item in paths.values():
        for op in path_item.values():
            for response in op["responses"].values():
                for media in response.get("content", {}).values():
                    ref = media["schema"].get("$ref") or media["schema"].get("items", {}).get("$ref")
                    if ref:
                        assert ref.rsplit("/", 1)[-1] in schemas, ref


def test_healthz(client: TestClient) -> None:
    """The health check answers ok once the database answers."""
    assert client.get("/healthz").json() == {"status": "ok"}
