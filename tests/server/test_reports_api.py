"""The key figures through the API and the page: published for everyone, raw for organizers only."""

from __future__ import annotations

import csv
import io

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server.reports.synthetic import generate
from tests.conftest import new_client, register, sign_in_organizer


@pytest.fixture
def forum_id(app: Starlette, client: TestClient) -> int:
    async def seed() -> int:
        def write(db) -> int:  # noqa: ANN001
            return generate(db, sessions=40, visits=3000, countries=180, seed=7).forum_id

        return await app.state.db.write(write)

    return client.portal.call(seed)


def test_published_report_hides_small_cells_and_raw_is_for_organizers(
    app: Starlette, client: TestClient, forum_id: int
) -> None:
    published = client.get(f"/api/forums/{forum_id}/report").json()
    assert published["published"] is True and published["sessions"] == 40
    counts = [v for v in published["by_country"].values()]
    assert "<5" in counts and all(v == "<5" or v >= 5 for v in counts)
    assert client.get(f"/api/forums/{forum_id}/report?raw=true").status_code == 401
    with new_client(app) as other:
        register(other, "ana@example.org")
        assert other.get(f"/api/forums/{forum_id}/report?raw=true").status_code == 403
        assert other.get(f"/forums/{forum_id}/report?raw=true").status_code == 403
    sign_in_organizer(app, client)
    raw = client.get(f"/api/forums/{forum_id}/report?raw=true").json()
    assert "published" not in raw and all(isinstance(v, int) for v in raw["by_country"].values())
    assert raw["unique_participants"] == published["unique_participants"]  # large enough to publish
    assert sum(raw["by_country"].values()) == raw["unique_participants"]


def test_report_filters_csv_and_errors(client: TestClient, forum_id: int) -> None:
    youth = client.get(f"/api/forums/{forum_id}/report", params={"track": "youth"}).json()
    assert youth["scope"]["track"] == "youth" and set(youth["sessions_by_track"]) <= {"youth"}
    response = client.get(f"/api/forums/{forum_id}/report.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["section", "item", "value"]
    totals = {item: value for section, item, value in rows if section == "totals"}
    assert int(totals["sessions"]) == 40
    assert client.get(f"/api/forums/{forum_id}/report", params={"track": "moon"}).status_code == 422
    assert client.get(f"/api/forums/{forum_id}/report", params={"date_from": "yesterday"}).status_code == 422
    assert client.get("/api/forums/99999/report").status_code == 404


def test_report_page_draws_charts_as_svg(client: TestClient, forum_id: int) -> None:
    page = client.get(f"/forums/{forum_id}/report")
    assert page.status_code == 200
    assert page.text.count("<svg") >= 8 and "Regional distribution" in page.text
    assert "&lt;5" in page.text  # hidden cells, shown as text
    assert client.get(f"/forums/{forum_id}/report", params={"type": "nonsense"}).status_code == 422


def test_live_dashboard_counts_people_in_rooms_for_organizers(app: Starlette, client: TestClient) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.conftest import make_forum, make_session
    from tests.server.test_rooms_ws import next_of, room_socket

    sign_in_organizer(app, client)
    forum = make_forum(client)["id"]
    now = datetime.now(UTC)
    session = make_session(
        client,
        forum,
        status="live",
        starts_at=now.isoformat(),  # today, whatever the hour
        ends_at=(now + timedelta(minutes=55)).isoformat(),
    )["id"]
    with new_client(app) as other:
        register(other, "ana@example.org")
        assert other.get(f"/api/forums/{forum}/live").status_code == 403
        assert other.get(f"/forums/{forum}/dashboard").status_code == 403
    assert client.get(f"/forums/{forum}/dashboard").status_code == 200
    with room_socket(client, session) as ws:
        next_of(ws, "welcome")
        live = client.get(f"/api/forums/{forum}/live").json()
        assert live["present_now"] == 1
        assert [(s["id"], s["present"]) for s in live["sessions_live"]] == [(session, 1)]
        assert live["sessions_live"][0]["attendees_today"] == 1 and live["today"]["attendance"] == 1
    live = client.get(f"/api/forums/{forum}/live").json()
    assert live["present_now"] == 0


def test_external_views_import_counts_in_the_figures(app: Starlette, client: TestClient) -> None:
    from tests.conftest import csrf, make_forum, make_session

    sign_in_organizer(app, client)
    forum = make_forum(client)["id"]
    make_session(client, forum, code="HL1")
    make_session(client, forum, code="WS2", title="Workshop two")
    good = 'session_code,platform,views\nHL1,video-site,1200\nWS2,social-stream,"3,400"\nHL1,social-stream,15\n'
    done = client.post(
        f"/api/forums/{forum}/external-views", content=good, headers={**csrf(client), "Content-Type": "text/csv"}
    )
    assert done.status_code == 200 and done.json() == {"rows": 3, "written": 3}
    figures = client.get(f"/api/forums/{forum}/report").json()
    assert figures["external_views"] == 1200 + 3400 + 15 and figures["cumulative_attendance"] == 4615
    # A revised export replaces counts; any bad row means nothing is written, with every error listed.
    bad = "session_code,platform,views\nHL1,video-site,2000\nNOPE,video-site,5\nWS2,,7\nWS2,x,-3\n"
    refused = client.post(
        f"/api/forums/{forum}/external-views", content=bad, headers={**csrf(client), "Content-Type": "text/csv"}
    )
    assert refused.status_code == 422
    fields = {f["field"]: f["reason"] for f in refused.json()["error"]["fields"]}
    assert set(fields) == {"line 3", "line 4", "line 5"} and "NOPE" in fields["line 3"]
    assert client.get(f"/api/forums/{forum}/report").json()["external_views"] == 4615
    again = "session_code,platform,views\nHL1,video-site,2000\n"
    client.post(
        f"/api/forums/{forum}/external-views", content=again, headers={**csrf(client), "Content-Type": "text/csv"}
    )
    assert client.get(f"/api/forums/{forum}/report").json()["external_views"] == 2000 + 3400 + 15
    wrong = client.post(
        f"/api/forums/{forum}/external-views",
        content="a,b\n1,2\n",
        headers={**csrf(client), "Content-Type": "text/csv"},
    )
    assert wrong.status_code == 422 and "columns" in wrong.text
    with new_client(app) as other:
        register(other, "ana@example.org")
        denied = other.post(
            f"/api/forums/{forum}/external-views", content=good, headers={**csrf(other), "Content-Type": "text/csv"}
        )
        assert denied.status_code == 403


def test_attendance_beacons_from_other_pages(app: Starlette, client: TestClient) -> None:
    """Lite, recording and transcript pages report visits; anonymous viewers count, never in demographics."""
    from tests.conftest import csrf, make_forum, make_session

    sign_in_organizer(app, client)
    forum = make_forum(client)["id"]
    session = make_session(client, forum)["id"]
    url = f"/api/sessions/{session}/attendance"
    with new_client(app) as viewer:
        # Without an account and without a key: refused; with a key: counted as anonymous.
        assert viewer.post(url, json={"channel": "lite", "event": "join"}, headers=csrf(viewer)).status_code == 401
        key = "k" * 20
        joined = viewer.post(url, json={"channel": "lite", "event": "join", "anonymous_key": key}, headers=csrf(viewer))
        assert joined.status_code == 200
        visit = joined.json()["visit_id"]
        beat = {"channel": "lite", "event": "heartbeat", "visit_id": visit, "anonymous_key": key}
        assert viewer.post(url, json=beat, headers=csrf(viewer)).status_code == 200
        stranger = {**beat, "anonymous_key": "z" * 20}
        assert viewer.post(url, json=stranger, headers=csrf(viewer)).status_code == 404  # not their visit
        leave = {**beat, "event": "leave"}
        assert viewer.post(url, json=leave, headers=csrf(viewer)).status_code == 200
        bad = viewer.post(url, json={"channel": "radio", "event": "join", "anonymous_key": key}, headers=csrf(viewer))
        assert bad.status_code == 422
        register(viewer, "reader@example.org")
        read = viewer.post(url, json={"channel": "transcript", "event": "join"}, headers=csrf(viewer))
        assert read.status_code == 200
    assert (
        client.post(
            "/api/sessions/99999/attendance", json={"channel": "lite", "event": "join"}, headers=csrf(client)
        ).status_code
        == 404
    )
    raw = client.get(f"/api/forums/{forum}/report?raw=true").json()
    row = raw["per_session"][0]
    assert (row["attendees"], row["anonymous"]) == (2, 1)
    assert row["by_channel"] == {"lite": 1, "transcript": 1}
    assert raw["unique_participants"] == 1 and raw["anonymous_viewers"] == 1
