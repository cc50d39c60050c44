"""Caption display settings kept in the person's profile: saved through /profile/caption-display (CSRF,
signed in, only known values), given back to the room and lite pages, exported with the person's data."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from tests.conftest import csrf, make_forum, make_session, register, sign_in_organizer


def test_settings_are_saved_validated_and_given_to_the_pages(app, client: TestClient) -> None:  # noqa: ANN001
    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"])
    client.post("/api/auth/signout", headers=csrf(client))
    register(client)
    headers = csrf(client)
    saved = client.post("/profile/caption-display", json={"size": "larger", "contrast": "yellow"}, headers=headers)
    assert saved.status_code == 200 and saved.json() == {"contrast": "yellow", "size": "larger"}
    merged = client.post("/profile/caption-display", json={"position": "bottom"}, headers=headers)
    assert merged.json() == {"contrast": "yellow", "position": "bottom", "size": "larger"}
    for bad in ({"size": "huge"}, {"font": "serif"}, ["larger"]):
        refused = client.post("/profile/caption-display", json=bad, headers=headers)
        assert refused.status_code == 422, bad
    assert client.post("/profile/caption-display", json={"size": "large"}).status_code == 403  # no CSRF token
    for page in ("room", "lite"):
        text = client.get(f"/sessions/{session['id']}/{page}").text
        attribute = text.split("data-saved='")[1].split("'")[0]
        wanted = {"contrast": "yellow", "position": "bottom", "size": "larger"}
        assert json.loads(attribute.replace("&#34;", '"')) == wanted
    exported = client.get("/profile/export").json()
    assert json.loads(exported["person"]["caption_display"])["size"] == "larger"


def test_signed_out_people_cannot_save(client: TestClient) -> None:
    answer = client.post("/profile/caption-display", json={"size": "large"}, headers=csrf(client))
    assert answer.status_code == 401
