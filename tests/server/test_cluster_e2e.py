"""Three ``forumlive serve`` processes on loopback sharing rooms through a real Redis and a real PostgreSQL
(both started by the tests), with real ``websockets`` clients: order across processes, resume on another
process, a Redis restart in the middle of a broadcast, and a process killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from websockets.asyncio.client import ClientConnection, connect

from realtime.client import ClientState
from tests.conftest import KillableServer, forumlive_command, wait_for_http
from tests.services import RedisServer, create_database, free_port, redis_process

LEASE_S = 2.0
HEARTBEAT_S = 0.3


@dataclass
class Node(KillableServer):
    """One server process of the cluster."""

    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    stop_timeout_s = 15.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [forumlive_command(), "serve", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        wait_for_http(f"{self.url}/healthz", self.process)


@dataclass
class Cluster:
    nodes: list[Node]
    redis: RedisServer
    database_url: str
    accounts: dict[str, dict[str, str]]
    cookies: dict[str, str] = field(default_factory=dict)

    def sql(self, query: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.database_url.replace("postgresql+psycopg://", "postgresql://")) as db:
            return db.execute(query).fetchall()

    def cookie(self, email: str) -> str:
        if email not in self.cookies:
            with httpx2.Client(base_url=self.nodes[0].url) as http:
                token = http.get("/api/auth/csrf").json()["csrf_token"]
                response = http.post(
                    "/api/auth/signin",
                    json={"email": email, "password": self.accounts[email]["password"]},
                    headers={"X-CSRF-Token": token},
                )
                assert response.status_code == 200, response.text
                self.cookies[email] = http.cookies["forumlive_session"]
        return self.cookies[email]

    def live_sessions(self) -> list[int]:
        return [s["id"] for s in httpx2.get(f"{self.nodes[0].url}/api/sessions?status=live").json()["sessions"]]


def cluster_env(root: Path, database_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    """The environment of a cluster's processes: one data directory, database and Redis, no live captions;
    ``settings`` as ``FORUMLIVE_<NAME>`` variables."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "FORUMLIVE_DATA_DIR": str(root / "data"),
        "FORUMLIVE_DATABASE_URL": database_url,
        "FORUMLIVE_REDIS_URL": redis_url,
        "FORUMLIVE_LIVE_CAPTIONS": "0",
        **{f"FORUMLIVE_{name.upper()}": value for name, value in settings.items()},
    }


def seed_demo(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Seed the demo forum into the cluster's database; its accounts by email."""
    seeded = subprocess.run(
        [forumlive_command(), "demo", "--no-serve"], env=env, capture_output=True, text=True, timeout=300
    )
    assert seeded.returncode == 0, seeded.stderr
    accounts = json.loads((Path(env["FORUMLIVE_DATA_DIR"]) / "demo-accounts.json").read_text())
    return {a["email"]: a for a in accounts}


@pytest.fixture(scope="module")
def cluster(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    database_url = create_database(postgres_server_url, "cluster_e2e")
    with redis_process() as redis:
        ports = [free_port() for _ in range(3)]
        env = cluster_env(
            root,
            database_url,
            redis.url,
            allowed_origins=",".join(f"http://127.0.0.1:{p}" for p in ports),
            cluster_lease_s=str(LEASE_S),
            cluster_heartbeat_s=str(HEARTBEAT_S),
        )
        accounts = seed_demo(env)
        nodes = [Node(port, env, root / f"node{i}.log") for i, port in enumerate(ports)]
        try:
            for node in nodes:
                node.start()
            yield Cluster(nodes, redis, database_url, accounts)
        finally:
            for node in nodes:
                node.stop()


class Client:
    """A real WebSocket client that keeps the reference client model (welcome, then events in seq order)."""

    def __init__(self, ws: ClientConnection, person_id: int) -> None:
        self.ws = ws
        self.person_id = person_id
        self.state: ClientState | None = None
        self.messages: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for frame in self.ws:
                message = json.loads(frame)
                self.messages.append(message)
                if message["type"] == "welcome":
                    self.state = ClientState(self.person_id, message)
                elif message["type"] == "event" and self.state is not None:
                    try:
                        self.state.receive(message)
                    except ValueError as exc:  # a gap or another epoch: what the page would resume from
                        self.errors.append(str(exc))
                self._changed.set()
        self._changed.set()

    async def until(self, check: Callable[[], Any], timeout_s: float = 15.0) -> Any:  # noqa: ANN401
        async with asyncio.timeout(timeout_s):
            while not (value := check()):
                self._changed.clear()
                await self._changed.wait()
        return value

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def ask(self, message: dict[str, Any], ref: str) -> dict[str, Any]:
        """Send a command with a ``ref`` and wait for its ack or error."""
        await self.send({**message, "ref": ref})
        return await self.until(lambda: next((m for m in self.messages if m.get("ref") == ref), None))

    def chat(self) -> list[str]:
        return [m["text"] for m in self.state.view["chat"]] if self.state else []


@asynccontextmanager
async def client(
    cluster: Cluster, node: Node, session_id: int, email: str, resume: ClientState | None = None
) -> AsyncIterator[Client]:
    """A client of ``node``: says hello, or resumes from what an earlier client (``resume``) had."""
    url = f"ws://127.0.0.1:{node.port}/ws/sessions/{session_id}"
    headers = {"Cookie": f"forumlive_session={cluster.cookie(email)}"}
    async with connect(url, origin=node.url, additional_headers=headers, open_timeout=15) as ws:
        if resume is None:
            await ws.send(json.dumps({"type": "hello", "v": 1}))
        else:
            await ws.send(json.dumps({"type": "resume", "v": 1, "epoch": resume.epoch, "last_seq": resume.seq}))
        first = json.loads(await ws.recv())
        c = Client(ws, resume.person_id if resume else first["you"]["id"])
        c.messages.append(first)
        c.state = ClientState(c.person_id, first) if first["type"] == "welcome" else resume
        try:
            yield c
        finally:
            c._reader.cancel()


ORGANIZER = "organizer@demo.forumlive.org"
MODERATOR = "moderator@demo.forumlive.org"


def participants(cluster: Cluster) -> list[str]:
    return sorted(e for e, a in cluster.accounts.items() if a["role"] == "participant")


async def test_clients_on_three_processes_see_the_same_chat_and_votes_in_the_same_order(cluster: Cluster) -> None:
    """Chat and question votes from clients on three processes reach all of them in one order."""
    sid = cluster.live_sessions()[0]
    a, b, c = cluster.nodes
    p1, p2 = participants(cluster)[:2]
    async with (
        client(cluster, a, sid, MODERATOR) as mo,
        client(cluster, b, sid, p1) as one,
        client(cluster, c, sid, p2) as two,
    ):
        everyone = (mo, one, two)
        for i in range(3):
            for who, name in ((mo, "mo"), (one, "one"), (two, "two")):
                assert (await who.ask({"type": "chat.send", "text": f"{name} {i}"}, f"c{name}{i}"))["type"] == "ack"
        assert (await one.ask({"type": "question.ask", "text": "Who pays for it?"}, "q"))["type"] == "ack"
        question = (await two.until(lambda: two.state.view["questions"]))[0]
        for who, ref in ((mo, "v0"), (one, "v1"), (two, "v2")):
            answer = await who.ask({"type": "question.vote", "question_id": question["id"]}, ref)
            assert answer["type"] == "ack", answer
        again = await two.ask({"type": "question.vote", "question_id": question["id"]}, "v3")
        assert again["code"] == "already_voted"
        target = max(x.state.seq for x in everyone)
        for x in everyone:
            await x.until(lambda x=x: x.state.seq >= target and x.state.view["questions"][0]["votes"] == 3)
        expected = [f"{n} {i}" for i in range(3) for n in ("mo", "one", "two")]
        assert mo.chat() == one.chat() == two.chat() == expected
        assert not any(x.errors for x in everyone)
        # Presence is counted across processes.
        await mo.until(lambda: mo.state.view["count"] == 3)
    votes = cluster.sql(f"SELECT count(*) FROM question_vote WHERE question_id = {question['id']}")
    assert votes == [(3,)]
    # Each process reports its part: the first owns the room, the others hold replicas.
    owner, replica = httpx2.get(f"{a.url}/metrics").text, httpx2.get(f"{b.url}/metrics").text
    assert re.search(r'^forumlive_rooms\{role="owner"\} [1-9]', owner, re.MULTILINE)
    assert re.search(r'^forumlive_rooms\{role="replica"\} [1-9]', replica, re.MULTILINE)
    assert re.search(r"^forumlive_bus_pending 0$", replica, re.MULTILINE)


async def test_a_client_resumes_on_another_process_without_loss(cluster: Cluster) -> None:
    """A client that drops from one process and resumes on another gets exactly the events it missed."""
    sid = cluster.live_sessions()[1]
    a, b, c = cluster.nodes
    p1 = participants(cluster)[0]
    async with client(cluster, a, sid, MODERATOR) as mo:
        async with client(cluster, b, sid, p1) as one:
            await one.ask({"type": "chat.send", "text": "before"}, "b")
            await one.until(lambda: one.chat()[-1:] == ["before"])
            kept = one.state
        for i in range(4):
            await mo.ask({"type": "chat.send", "text": f"while away {i}"}, f"w{i}")
        async with client(cluster, c, sid, p1, resume=kept) as back:
            assert back.messages[0]["type"] == "resumed", back.messages[0]
            assert back.messages[0]["missed"] >= 4
            await back.until(lambda: back.chat()[-5:] == ["before"] + [f"while away {i}" for i in range(4)])
            assert not back.errors


async def test_redis_restarted_mid_broadcast_loses_nothing(cluster: Cluster) -> None:
    """Redis killed and started again (empty) while an organizer posts: viewers on the other processes end up
    with every line, in order, and the database has each once."""
    sid = cluster.live_sessions()[2]
    a, b, c = cluster.nodes
    p1, p2 = participants(cluster)[:2]
    lines = [f"line {i}" for i in range(30)]
    async with (
        client(cluster, a, sid, ORGANIZER) as mo,
        client(cluster, b, sid, p1) as one,
        client(cluster, c, sid, p2) as two,
    ):
        for i, line in enumerate(lines):
            if i == 10:
                cluster.redis.stop()
            if i == 14:
                cluster.redis.start()
            answer = await mo.ask({"type": "chat.send", "text": line}, f"l{i}")
            if answer.get("code") == "room_moved":  # refused, not applied: another process owns the room now
                answer = await mo.ask({"type": "chat.send", "text": line}, f"l{i}again")
            assert answer["type"] == "ack", answer
            await asyncio.sleep(0.1)
        for viewer in (mo, one, two):
            await viewer.until(lambda v=viewer: v.chat()[-len(lines) :] == lines, timeout_s=30)
            assert not viewer.errors
    rows = cluster.sql(f"SELECT text FROM chat_message WHERE session_id = {sid} AND text LIKE 'line %' ORDER BY id")
    assert [r[0] for r in rows] == lines


def test_workers_without_redis_are_refused(cluster: Cluster, tmp_path: Path) -> None:
    """``serve --workers 2`` without Redis stops at once and says why (each process would have its own rooms)."""
    env = {k: v for k, v in cluster.nodes[0].env.items() if k != "FORUMLIVE_REDIS_URL"}
    done = subprocess.run(
        [forumlive_command(), "serve", "--workers", "2", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "FORUMLIVE_REDIS_URL" in done.stderr


async def test_serve_with_two_workers_shares_rooms(cluster: Cluster, tmp_path: Path) -> None:
    """``forumlive serve --workers 2``: two processes answer on one port and their clients share the room."""
    port = free_port()
    origins = cluster.nodes[0].env["FORUMLIVE_ALLOWED_ORIGINS"] + f",http://127.0.0.1:{port}"
    node = Node(port, {**cluster.nodes[0].env, "FORUMLIVE_ALLOWED_ORIGINS": origins}, tmp_path / "workers.log")
    with node.log.open("a") as out:
        node.process = subprocess.Popen(
            [forumlive_command(), "serve", "--workers", "2", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=node.env,
        )
    try:
        wait_for_http(f"{node.url}/healthz", node.process)
        seen: set[str] = set()
        for _ in range(200):  # a new connection each time; the kernel hands them to either worker
            with httpx2.Client() as http:
                seen.add(http.get(f"{node.url}/healthz").json()["node"])
            if len(seen) == 2:
                break
        assert len(seen) == 2, "only one worker answered"
        assert "not its sound" in node.log.read_text()  # the operator is told what workers do to media
        sid = cluster.live_sessions()[1]
        people = [MODERATOR, *participants(cluster)[:3]]
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(client(cluster, node, sid, email)) for email in people]
            for i, c in enumerate(clients):
                assert (await c.ask({"type": "chat.send", "text": f"worker line {i}"}, f"w{i}"))["type"] == "ack"
            expected = [f"worker line {i}" for i in range(len(clients))]
            for c in clients:
                await c.until(lambda c=c: c.chat()[-len(expected) :] == expected)
                assert not c.errors
    finally:
        node.stop()


def test_signin_limit_holds_across_processes(cluster: Cluster) -> None:
    """Wrong passwords spread over two processes count together: the limit's next attempt is refused on a third."""
    from server.ratelimit import SIGNIN_FAILURES

    email = "speaker@demo.forumlive.org"
    for i in range(SIGNIN_FAILURES):
        with httpx2.Client(base_url=cluster.nodes[i % 2].url) as http:
            token = http.get("/api/auth/csrf").json()["csrf_token"]
            wrong = http.post(
                "/api/auth/signin",
                json={"email": email, "password": "not-the-password"},
                headers={"X-CSRF-Token": token},
            )
            assert wrong.status_code == 401
    with httpx2.Client(base_url=cluster.nodes[2].url) as http:
        token = http.get("/api/auth/csrf").json()["csrf_token"]
        password = cluster.accounts[email]["password"]
        blocked = http.post(
            "/api/auth/signin", json={"email": email, "password": password}, headers={"X-CSRF-Token": token}
        )
    assert blocked.status_code == 429


async def test_a_killed_process_has_its_visits_closed_and_its_people_gone(cluster: Cluster) -> None:
    """SIGKILL one process: its users leave presence on the others, its visits are closed at its last heartbeat."""
    sid = cluster.live_sessions()[0]
    a, b, c = cluster.nodes
    p3 = participants(cluster)[2]
    person_id = cluster.sql(f"SELECT id FROM person WHERE email = '{p3}'")[0][0]
    async with client(cluster, a, sid, MODERATOR) as mo:
        with contextlib.suppress(Exception):  # the victim's socket dies with its server
            async with client(cluster, c, sid, p3):
                await mo.until(lambda: any(p["id"] == person_id for p in mo.state.view["roster"]))
                c.kill()
                await mo.until(lambda: not any(p["id"] == person_id for p in mo.state.view["roster"]), timeout_s=20)
        assert not any(p["id"] == person_id for p in mo.state.view["roster"])
        query = (
            "SELECT left_at, last_seen_at FROM attendance_visit "
            f"WHERE session_id = {sid} AND person_id = {person_id} AND channel = 'live'"
        )
        async with asyncio.timeout(20):
            while (rows := cluster.sql(query)) and rows[-1][0] is None:
                await asyncio.sleep(0.2)  # closed by a survivor's sweep; nothing to wait on but the database
        assert rows and rows[-1][0] == rows[-1][1]
        # The room goes on for the others.
        assert (await mo.ask({"type": "chat.send", "text": "after the crash"}, "after"))["type"] == "ack"
