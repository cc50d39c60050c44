"""The product path: ``forumlive demo`` as a real process (uvicorn, SQLite), a viewer on the room WebSocket,
and a talk played into the live session in real time by ``POST /api/sessions/{id}/captions/play?speed=1``
(the organizer's endpoint; the same StreamingProcessor and engine slots as a speaker's WebRTC audio).

The viewer notes when each ``caption.partial`` and ``caption.final`` arrives (wall clock; server and
viewer share this machine's clock). The server's own time 0 of the talk comes from the finals:
``at = origin + start_s`` (speed 1), so ``origin = at - start_s`` to the millisecond; the time the POST
was sent and answered brackets it as a check. A word ended at ``origin + end_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import websockets

from bench.captions.speech import Program, Shown

SESSION_COOKIE = "forumlive_session"
PING_EVERY_S = 15.0  # the room closes a socket silent for 60 s
SPEAKER = "Bench talk"
WARMUP_SPEAKER = "Bench warm-up"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoServer:
    """``forumlive demo`` on a free port in ``data_dir``, its output in ``data_dir/../server.log``."""

    def __init__(self, data_dir: Path, engine: str, model: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{engine}.log"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "FORUMLIVE_CAPTIONS_ENGINE": engine,
            "FORUMLIVE_CAPTIONS_MODEL": model,
        }
        command = [str(Path(sys.executable).parent / "forumlive"), "demo", "--port", str(self.port)]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [*command, "--data-dir", str(data_dir)], stdout=log, stderr=subprocess.STDOUT, env=env
            )

    def wait_up(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"forumlive demo exited; log:\n{self.tail()}")
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.url} did not come up; log:\n{self.tail()}")

    def accounts(self) -> dict[str, dict[str, str]]:
        return {a["email"]: a for a in json.loads((self.data_dir / "demo-accounts.json").read_text())}

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def signed_in(url: str, email: str, password: str) -> httpx2.AsyncClient:
    client = httpx2.AsyncClient(base_url=url, timeout=60.0)
    token = (await client.get("/api/auth/csrf")).json()["csrf_token"]
    response = await client.post(
        "/api/auth/signin", json={"email": email, "password": password}, headers={"X-CSRF-Token": token}
    )
    if response.status_code != 200:
        raise RuntimeError(f"sign-in of {email} failed: {response.status_code} {response.text}")
    return client


async def play(client: httpx2.AsyncClient, session_id: int, prog: Program, speaker: str, speed: float) -> float:
    """POST the talk; returns the wall-clock time the request was sent (the answer comes right after)."""
    token = (await client.get("/api/auth/csrf")).json()["csrf_token"]
    body = prog.wav_bytes()
    sent = time.time()
    response = await client.post(
        f"/api/sessions/{session_id}/captions/play",
        params={"speed": speed, "speaker": speaker},
        content=body,
        headers={"X-CSRF-Token": token, "Content-Type": "audio/wav"},
    )
    if response.status_code != 202:
        raise RuntimeError(f"play refused: {response.status_code} {response.text}")
    return sent


class Viewer:
    """A participant's room socket, noting when each caption event arrives."""

    def __init__(self, url: str, session_id: int, cookie: str) -> None:
        self.ws_url = url.replace("http://", "ws://") + f"/ws/sessions/{session_id}"
        self.origin, self.cookie = url, cookie
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._socket: Any = None

    async def open(self) -> None:
        self._socket = await websockets.connect(
            self.ws_url, origin=self.origin, additional_headers={"Cookie": f"{SESSION_COOKIE}={self.cookie}"}
        )
        await self._socket.send(json.dumps({"type": "hello", "v": 1}))
        welcome = json.loads(await asyncio.wait_for(self._socket.recv(), 10))
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"expected welcome, got {welcome}")
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._ping())]

    async def _read(self) -> None:
        async for raw in self._socket:
            at = time.time()
            message = json.loads(raw)
            if message.get("type") == "event" and str(message.get("kind", "")).startswith("caption."):
                self.events.append((at, message["kind"], message["data"]))

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(PING_EVERY_S)
            await self._socket.send(json.dumps({"type": "ping"}))

    def shown(self, speaker: str) -> list[Shown]:
        return [
            Shown(at, data["text"], float(data["start_s"]), float(data["end_s"]), kind == "caption.final")
            for at, kind, data in self.events
            if data.get("speaker") == speaker
        ]

    def finals_of(self, speaker: str) -> list[dict[str, Any]]:
        return [data for _, kind, data in self.events if kind == "caption.final" and data.get("speaker") == speaker]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task
        if self._socket is not None:
            await self._socket.close()


async def _idle(organizer: httpx2.AsyncClient, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
    """Poll the caption status each 0.5 s until no stream is left, for at most ``timeout_s``; returns the
    samples taken, and whether the streams finished."""
    samples: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    seen = False
    while time.monotonic() < deadline:
        status = (await organizer.get("/api/captions/status")).json()
        streams = status.get("streams", [])
        if streams:
            seen = True
            samples += [{"t": time.time(), **s} for s in streams]
        elif seen:
            return samples, True
        await asyncio.sleep(0.5)
    return samples, False


async def measure(server: DemoServer, talk: Program, warmup: Program, overtime_s: float) -> dict[str, Any]:
    """Play ``warmup`` (speed 2, not measured: the engine loads on first use), then ``talk`` in real time;
    stop waiting ``overtime_s`` after the talk's end (an engine slower than real time falls behind)."""
    accounts = server.accounts()
    organizer_account = next(a for a in accounts.values() if a["role"] == "organizer")
    viewer_account = next(a for a in accounts.values() if a["role"] == "participant")
    organizer = await signed_in(server.url, organizer_account["email"], organizer_account["password"])
    viewer_client = await signed_in(server.url, viewer_account["email"], viewer_account["password"])
    try:
        sessions = (await organizer.get("/api/sessions", params={"status": "live"})).json()["sessions"]
        session_id = next(s["id"] for s in sessions if s.get("language", "en") == "en")
        viewer = Viewer(server.url, session_id, viewer_client.cookies[SESSION_COOKIE])
        await viewer.open()
        try:
            await play(organizer, session_id, warmup, WARMUP_SPEAKER, 2.0)
            if not (await _idle(organizer, 120 + warmup.duration_s))[1]:
                raise TimeoutError("the warm-up clip was not captioned within 2 minutes")
            sent = await play(organizer, session_id, talk, SPEAKER, 1.0)
            answered = time.time()
            samples, finished = await _idle(organizer, talk.duration_s + overtime_s)
            stopped = time.time()
            behind = not finished
            await asyncio.sleep(0.0 if behind else 1.0)  # the last events are sent before the stream leaves
        finally:
            await viewer.close()
    finally:
        await organizer.aclose()
        await viewer_client.aclose()
    finals = viewer.finals_of(SPEAKER)
    if not finals:
        raise RuntimeError(f"the viewer received no final caption; server log:\n{server.tail()}")
    origins = [float(f["at"]) - float(f["start_s"]) for f in finals]
    origin = statistics.median(origins)
    last = samples[-1] if samples else {}
    return {
        "shown": viewer.shown(SPEAKER),
        "origin": origin,
        "stopped": stopped if behind else None,
        "audio_done_s": last.get("audio_s"),
        "origin_spread_s": round(max(origins) - min(origins), 3),
        "origin_after_post_s": round(origin - sent, 3),
        "post_answered_after_s": round(answered - sent, 3),
        "rtf": last.get("rtf"),
        "status_lag_max_s": max((s["lag_s"] for s in samples), default=None),
        "steps": last.get("steps"),
        "session_id": session_id,
    }
