"""Transcripts across speakers on the session's clock, as pages and files, and search across the forum."""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import make_forum, make_session, sign_in_organizer

T0 = 1_764_064_000.0


def _say(app: Starlette, client: TestClient, session_id: int, speaker: str, person: int | None, lines: list) -> None:
    """Final captions as the captioning pipeline publishes them: (start_s, end_s, text, at)."""
    data = {"speaker_id": person, "speaker": speaker, "track": "machine", "language": "en"}

    async def publish() -> None:
        await app.state.rooms.publish_captions(session_id, data, lines, None)

    client.portal.call(publish)


def _two_speakers(app: Starlette, client: TestClient) -> tuple[int, int]:
    sign_in_organizer(app, client)
    forum = make_forum(client)["id"]
    first = make_session(client, forum, status="live")["id"]
    second = make_session(client, forum, status="live")["id"]
    # Each speaker's stream clock starts at 0; they spoke in turns: Hana, Kenji, Hana.
    _say(app, client, first, "Hana Al-Sayed", None, [(0.0, 2.0, "Good morning, everyone.", T0 + 1.0)])
    _say(app, client, first, "Hana Al-Sayed", None, [(9.0, 11.5, "Over to you, Kenji.", T0 + 10.0)])
    _say(
        app, client, first, "Kenji <Host>", None, [(0.5, 3.0, "Thank you: 50% of schools in the CAFÉ study.", T0 + 3.5)]
    )
    _say(app, client, second, "Olena", None, [(0.0, 1.0, "Café networks_work.", T0 + 500.0)])
    return first, second


def test_transcript_orders_speakers_by_when_they_spoke(app: Starlette, client: TestClient) -> None:
    first, _ = _two_speakers(app, client)
    captions = client.get(f"/api/sessions/{first}/transcript").json()["captions"]
    assert [c["speaker"] for c in captions] == ["Hana Al-Sayed", "Kenji <Host>", "Hana Al-Sayed"]
    assert [c["offset_s"] for c in captions] == [0.0, 2.5, 9.0]
    assert [c["start_s"] for c in captions] == [0.0, 0.5, 9.0]  # each on its own stream clock
    vtt = client.get(f"/api/sessions/{first}/transcript.vtt").text
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.*)\n", vtt)
    assert cues == [
        ("00:00:00.000", "00:00:02.000", "<v Hana Al-Sayed>Good morning, everyone."),
        ("00:00:02.500", "00:00:05.000", "<v Kenji &lt;Host&gt;>Thank you: 50% of schools in the CAFÉ study."),
        ("00:00:09.000", "00:00:11.500", "<v Hana Al-Sayed>Over to you, Kenji."),
    ]
    text = client.get(f"/api/sessions/{first}/transcript.txt").text
    assert text.splitlines()[0] == "Hana Al-Sayed: Good morning, everyone."


def test_transcript_page_shows_speakers_and_escapes_text(app: Starlette, client: TestClient) -> None:
    first, _ = _two_speakers(app, client)
    page = client.get(f"/sessions/{first}/transcript")
    assert page.status_code == 200
    assert "Kenji &lt;Host&gt;" in page.text and "<Host>" not in page.text
    assert page.text.index("Good morning") < page.text.index("Thank you") < page.text.index("Over to you")
    assert f"/api/sessions/{first}/transcript.vtt?track=machine" in page.text
    assert client.get(f"/sessions/{first}/transcript?track=human").status_code == 200
    assert client.get(f"/sessions/{first}/transcript?track=robot").status_code == 422
    assert client.get("/sessions/999999/transcript").status_code == 404


def test_search_ignores_case_in_any_script_and_takes_text_literally(app: Starlette, client: TestClient) -> None:
    first, second = _two_speakers(app, client)
    hits = client.get("/api/transcripts/search", params={"q": "café"}).json()["hits"]
    assert sorted(h["session_id"] for h in hits) == sorted([first, second])  # "CAFÉ" and "Café"
    kenji = next(h for h in hits if h["session_id"] == first)
    assert kenji["speaker"] == "Kenji <Host>" and kenji["offset_s"] == 2.5
    # % and _ are text, not patterns.
    assert [h["text"] for h in client.get("/api/transcripts/search", params={"q": "50%"}).json()["hits"]] == [
        "Thank you: 50% of schools in the CAFÉ study."
    ]
    assert (
        client.get("/api/transcripts/search", params={"q": "k_y"}).json()["hits"] == []
    )  # "Thank you" if _ were a wildcard
    assert len(client.get("/api/transcripts/search", params={"q": "networks_work"}).json()["hits"]) == 1
    assert client.get("/api/transcripts/search", params={"q": "x"}).status_code == 422


def test_search_page_marks_the_match_as_text(app: Starlette, client: TestClient) -> None:
    _two_speakers(app, client)
    page = client.get("/transcripts", params={"q": "host"})
    assert page.status_code == 200 and "0 captions found" in page.text  # speaker names are not searched
    page = client.get("/transcripts", params={"q": "cafÉ"})
    assert "2 captions found" in page.text
    assert "<mark>CAFÉ</mark>" in page.text and "<mark>Café</mark>" in page.text
    assert client.get("/transcripts", params={"q": "a"}).status_code == 422


def test_reading_a_transcript_counts_as_attendance(app: Starlette, client: TestClient) -> None:
    first, _ = _two_speakers(app, client)  # signed in as the organizer
    client.get(f"/sessions/{first}/transcript")
    client.get(f"/sessions/{first}/transcript")  # a reload within a minute is the same visit
    forum = client.get(f"/api/sessions/{first}").json()["forum_id"]
    row = next(r for r in client.get(f"/api/forums/{forum}/report?raw=true").json()["per_session"] if r["id"] == first)
    assert row["by_channel"] == {"transcript": 1} and row["attendees"] == 1
