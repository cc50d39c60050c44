"""Shared fixtures: settings in a temporary data dir, the app, a test client, and quick helpers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server import accounts
from server.app import create_app
from server.settings import Settings, load_settings

BASE_URL = "http://127.0.0.1:8000"
PASSWORD = "correct horse battery"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, env_file=None, data_dir=tmp_path / "data")


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@contextmanager
def new_client(app: Starlette) -> Iterator[TestClient]:
    """A second browser with its own cookies, for HTTP. It does not run the app's lifespan again
    (the ``client`` fixture does, on its own event loop, where the live rooms run)."""
    other = TestClient(app, base_url=BASE_URL)
    try:
        yield other
    finally:
        other.close()


def csrf(client: TestClient) -> dict[str, str]:
    """The X-CSRF-Token header for this client's browser session."""
    token = client.get("/api/auth/csrf").json()["csrf_token"]
    return {"X-CSRF-Token": token}


def register(client: TestClient, email: str = "pat@example.org", name: str = "Pat Participant", **extra: Any) -> dict:
    response = client.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "name": name, **extra},
        headers=csrf(client),
    )
    assert response.status_code == 201, response.text
    return response.json()


def sign_in_organizer(app: Starlette, client: TestClient, email: str = "org@example.org") -> dict:
    app.state.db.run_write(accounts.create_organizer, email, "Olu Organizer", PASSWORD)
    response = client.post("/api/auth/signin", json={"email": email, "password": PASSWORD}, headers=csrf(client))
    assert response.status_code == 200, response.text
    return response.json()


def make_forum(client: TestClient, slug: str = "wsis-test", tz: str = "Europe/Zurich", **extra: Any) -> dict:
    body = {
        "slug": slug,
        "name": "WSIS Test Forum",
        "start_date": "2026-03-01",
        "end_date": "2026-03-05",
        "timezone": tz,
    }
    response = client.post("/api/forums", json={**body, **extra}, headers=csrf(client))
    assert response.status_code == 201, response.text
    return response.json()


def session_body(forum_id: int, **extra: Any) -> dict:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    body = {
        "forum_id": forum_id,
        "title": "Thematic workshop on e-health",
        "type": "thematic_workshop",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        "action_lines": ["C7"],
        "sdgs": [3],
    }
    body.update(extra)
    return body


def make_session(client: TestClient, forum_id: int, **extra: Any) -> dict:
    response = client.post("/api/sessions", json=session_body(forum_id, **extra), headers=csrf(client))
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A real PostgreSQL: FORUMLIVE_TEST_POSTGRES_URL, or one started from the installed binaries."""
    import os

    from tests.services import postgres_server

    url = os.environ.get("FORUMLIVE_TEST_POSTGRES_URL")
    if url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
        return
    with postgres_server() as started:
        yield started


@pytest.fixture
def postgres_url(postgres_server_url: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the test PostgreSQL server, named after the test."""
    import re

    from tests.services import create_database

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    return create_database(postgres_server_url, name)


@dataclass
class DemoServer:
    url: str
    data_dir: Path
    accounts: dict[str, dict[str, str]]
    process: subprocess.Popen


def forumlive_command() -> str:
    """The installed console script, next to the running interpreter."""
    script = Path(sys.executable).parent / "forumlive"
    assert script.exists(), f"forumlive is not installed in {script.parent}"
    return str(script)


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    import httpx2

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx2.get(url, timeout=1.0).status_code == 200:
                return
        except httpx2.TransportError:
            time.sleep(0.1)  # the server socket is not open yet; nothing else to wait on
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """``forumlive demo`` as a real process on a free port (uvicorn, SQLite, in-process bus)."""
    from tests.services import free_port

    data_dir = tmp_path_factory.mktemp("demo") / "data"
    port = free_port()
    log = (data_dir.parent / "server.log").open("w")
    process = subprocess.Popen(
        [forumlive_command(), "demo", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        # Loopback WebRTC needs ICE on 127.0.0.1 (aioice skips it by default); the media tests read the
        # speakers' recorded audio.
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "FORUMLIVE_ICE_HOST_ADDRESSES": "127.0.0.1",
            "FORUMLIVE_RECORD_AUDIO": "1",
        },
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process)
        accounts = {a["email"]: a for a in json.loads((data_dir / "demo-accounts.json").read_text())}
        yield DemoServer(f"http://127.0.0.1:{port}", data_dir, accounts, process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


class KillableServer:
    """A server process a test started (``self.process``), stopped with SIGTERM or killed with SIGKILL."""

    process: subprocess.Popen | None
    stop_timeout_s = 10.0

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=self.stop_timeout_s)


@dataclass
class ServerProcess(KillableServer):
    """A seeded demo data dir served by ``forumlive serve`` as a real process that tests may kill."""

    url: str
    data_dir: Path
    port: int
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [forumlive_command(), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(f"{self.url}/healthz", self.process)

    def sql(self, query: str) -> list[tuple]:
        with sqlite3.connect(self.data_dir / "forumlive.db") as db:
            return db.execute(query).fetchall()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    data_dir = tmp_path / "data"
    seeded = subprocess.run(
        [forumlive_command(), "demo", "--no-serve", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    from tests.services import free_port

    port = free_port()
    running = ServerProcess(f"http://127.0.0.1:{port}", data_dir, port)
    running.start()
    yield running
    running.stop()
