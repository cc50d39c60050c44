"""The API end to end on a real PostgreSQL: accounts, programme, filters, import, agenda."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import load_settings
from tests.conftest import BASE_URL, csrf, make_forum, make_session, register, sign_in_organizer

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_app(postgres_url: str, tmp_path: Path) -> Starlette:
    settings = load_settings(environ={}, env_file=None, data_dir=tmp_path, database_url=postgres_url)
    return create_app(settings)


@pytest.fixture
def pg_client(pg_app: Starlette) -> Iterator[TestClient]:
    with TestClient(pg_app, base_url=BASE_URL) as client:
        yield client


def test_programme_and_accounts_on_postgres(pg_app: Starlette, pg_client: TestClient) -> None:
    """The same flows as on SQLite: create, filter (including non-ASCII search), import, register, delete."""
    assert pg_app.state.db.engine.dialect.name == "postgresql"
    client = pg_client
    sign_in_organizer(pg_app, client)
    forum = make_forum(client)
    cafe = make_session(
        client, forum["id"], title="Knowledge CAFÉ on youth", type="knowledge_cafe", sdgs=[4, 17], tags=["youth"]
    )
    make_session(client, forum["id"], title="TalkX", type="talkx", action_lines=["C5"], sdgs=[16])
    assert [s["id"] for s in client.get("/api/sessions?q=café").json()["sessions"]] == [cafe["id"]]
    assert [s["id"] for s in client.get("/api/sessions?sdg=17&tag=youth").json()["sessions"]] == [cafe["id"]]
    report = client.post(
        f"/api/forums/{forum['id']}/import?format=csv&mode=valid_only",
        content=b"code,title,type,starts_at,ends_at,sdgs\nA1,Imported,talkx,2026-03-03 10:00,2026-03-03 11:00,9\n"
        b"A2,Broken,talkx,2026-03-03 10:00,2026-03-03 09:00,9\n",
        headers=csrf(client),
    ).json()
    assert (report["created"], len(report["rejected"])) == (1, 1)
    assert client.get("/api/sessions").json()["total"] == 3
    client.post("/api/auth/signout", headers=csrf(client))
    register(client, country="EG", country_consent=True)
    assert client.get("/api/me").json()["region"] == "arab_states"
    assert client.post(f"/api/sessions/{cafe['id']}/registration", headers=csrf(client)).status_code == 204
    assert client.get(f"/api/sessions/{cafe['id']}").json()["registered"] == 1
    deleted = client.request("DELETE", "/api/me", json={"password": "correct horse battery"}, headers=csrf(client))
    assert deleted.status_code == 204
    assert client.get(f"/api/sessions/{cafe['id']}").json()["registered"] == 0
