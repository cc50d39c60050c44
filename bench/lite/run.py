"""bench/lite: bytes on the wire for a lite page's viewer over a typical session, against the full room
page's viewer in the same run (same server, same session, same moment).

One ``forumlive serve`` process and a seeded live session. The audience (``--audience`` accounts, real
``websockets`` clients) makes a typical session's traffic for ``--duration`` seconds:

- captions at speaking pace: 2.5 words/s (150 words a minute), a partial line every step of the live
  captioner (``FORUMLIVE_CAPTIONS_STEP_S``' default, 0.5 s) growing word by word, a final line per
  sentence of 8 to 16 words (about every 5 s),
  sent as typed captions (``caption.type``) by the organizer, whose events have the same shape as the
  machine track's;
- chat: a line of 40 to 120 characters every 6 s; questions: one every 40 s, a vote every 4 s;
- presence: the audience arrives at the start, then one person leaves or comes back every 3 s;
- a hand raised and lowered every 30 s.

The two measured viewers are participants: the full page's room socket (``/ws/sessions/{id}``) and the
lite socket with the same caption track (``/ws/sessions/{id}/lite?track=human``); both send the page's
20 s ping. Counted: every WebSocket frame in both directions, payload plus frame header (2 to 4 bytes
from the server, 6 to 8 masked from the client), from the connection's first frame (the welcome
included) to the end. ``tcpip_kbps`` adds 52 bytes of IPv4 + TCP (with timestamps) per frame, as if
each frame went in its own segment (an upper bound: frames that coalesce share one). The full page also
receives the stage's sound and pictures over WebRTC (Opus about 32 kbit/s, video up to 1.25 Mbit/s in
bench/relay), which the lite page leaves out unless asked for sound; they are not counted here. Page
weight: the HTML and every script and style sheet each page loads, once, in each of the six languages
(outside English with the page's messages: the JSON catalogue common.js fetches, or those the lite page
carries in its HTML).

``summary``: ``lite_kbps``, ``full_kbps`` (events only), ``lite_tcpip_kbps``, ``full_tcpip_kbps``,
``ratio``, page weights in KiB (English, and the heaviest language), ``target_kbps`` 5. Results:
``bench/results/lite.json``.

    python bench/lite/run.py [--duration 120] [--audience 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import table, write_results  # noqa: E402
from bench.fanout.run import free_port, seed, wait_up  # noqa: E402
from server.settings import Settings  # noqa: E402

WORDS_PER_S = 2.5
PARTIAL_EVERY_S = Settings().captions_step_s  # a live captioner's partial line per step (0.5 s)
CHAT_EVERY_S = 6.0
QUESTION_EVERY_S = 40.0
VOTE_EVERY_S = 4.0
CHURN_EVERY_S = 3.0
HAND_EVERY_S = 30.0
PING_EVERY_S = 20.0
TCPIP_BYTES = 52  # IPv4 20 + TCP 20 + timestamp option 12, per frame in its own segment
TARGET_KBPS = 5.0
TALK = (
    "Broadband reached forty rural schools last year and the teachers say attendance rose as a result "
    "we now want to connect every clinic in the district before the next rainy season begins "
    "community networks are owned by the villages themselves so the money stays local and the "
    "maintenance is done by young technicians trained in the regional college our regulator has "
    "opened spectrum for these networks at a very low fee which made all the difference"
).split()


def ws_header(size: int, masked: bool) -> int:
    return (2 if size < 126 else 4 if size < 65536 else 10) + (4 if masked else 0)


@dataclass
class Meter:
    """Bytes and frames of one measured viewer, by direction and by event kind."""

    down: int = 0
    up: int = 0
    frames: int = 0
    welcome: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def received(self, text: str) -> None:
        size = len(text.encode())
        self.down += size + ws_header(size, masked=False)
        self.frames += 1
        message = json.loads(text)
        kind = message.get("kind") or message.get("type")
        self.kinds[kind] = self.kinds.get(kind, 0) + size
        if message.get("type") == "welcome":
            self.welcome = size

    def sent(self, text: str) -> None:
        size = len(text.encode())
        self.up += size + ws_header(size, masked=True)
        self.frames += 1


async def measured_viewer(url: str, headers: dict[str, str], meter: Meter, stop: asyncio.Event) -> None:
    async with connect(url, additional_headers=headers, compression=None, max_size=2**20) as ws:
        hello = json.dumps({"type": "hello", "v": 1})
        meter.sent(hello)
        await ws.send(hello)

        async def pinger() -> None:
            while not stop.is_set():
                await asyncio.sleep(PING_EVERY_S)
                meter.sent('{"type":"ping"}')
                await ws.send('{"type":"ping"}')

        task = asyncio.create_task(pinger())
        try:
            while not stop.is_set():
                try:
                    async with asyncio.timeout(0.5):
                        meter.received(str(await ws.recv()))
                except TimeoutError:
                    continue
        finally:
            task.cancel()


class Person:
    """An audience member's room socket: sends commands, reads and discards what comes back."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.refs = 0
        self.closed: list[str] = []

    async def join(self) -> None:
        self.ws = await connect(self.url, additional_headers=self.headers, compression=None, max_size=2**20)
        await self.ws.send(json.dumps({"type": "hello", "v": 1}))
        self.reader = asyncio.create_task(self._drain(self.ws))

    @staticmethod
    async def _drain(ws: ClientConnection) -> None:
        """Read and drop everything; ping as a page does (the server closes sockets silent for 60 s)."""

        async def pinger() -> None:
            while True:
                await asyncio.sleep(PING_EVERY_S)
                await ws.send('{"type":"ping"}')

        task = asyncio.create_task(pinger())
        try:
            async for _ in ws:
                pass
        except Exception:  # noqa: BLE001 - closed by leave()
            return
        finally:
            task.cancel()

    async def leave(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    async def send(self, message: dict) -> None:
        if self.ws is None:
            return
        self.refs += 1
        try:
            await self.ws.send(json.dumps({**message, "ref": f"b{self.refs}"}))
        except ConnectionClosed as exc:  # counted: the run should not lose audience members
            self.closed.append(str(exc))


async def captions(organizer: Person, stop: asyncio.Event, rng: random.Random) -> None:
    at = 0
    while not stop.is_set():
        length = rng.randint(8, 16)
        sentence = [TALK[(at + i) % len(TALK)] for i in range(length)]
        at += length
        shown = 0.0
        while shown < length and not stop.is_set():
            await asyncio.sleep(PARTIAL_EVERY_S)
            shown = min(length, shown + WORDS_PER_S * PARTIAL_EVERY_S)
            text = " ".join(sentence[: int(shown)])
            await organizer.send({"type": "caption.type", "text": text, "final": False, "speaker": "Hana Al-Sayed"})
        final = " ".join(sentence).capitalize() + "."
        await organizer.send({"type": "caption.type", "text": final, "final": True, "speaker": "Hana Al-Sayed"})


async def every(period_s: float, stop: asyncio.Event, action) -> None:  # noqa: ANN001
    while not stop.is_set():
        await asyncio.sleep(period_s)
        if not stop.is_set():
            await action()


async def session_traffic(organizer: Person, audience: list[Person], stop: asyncio.Event, seed_n: int) -> list:
    rng = random.Random(seed_n)
    present = list(audience)
    away: list[Person] = []
    questions = [0]

    async def chat() -> None:
        text = " ".join(rng.choice(TALK) for _ in range(rng.randint(6, 18)))
        await rng.choice(present).send({"type": "chat.send", "text": text})

    async def ask() -> None:
        questions[0] += 1
        text = f"Question {questions[0]}: " + " ".join(rng.choice(TALK) for _ in range(rng.randint(8, 20))) + "?"
        await present[questions[0] % len(present)].send({"type": "question.ask", "text": text, "anonymous": False})

    async def vote() -> None:
        # Question ids are the room's; a vote on one that is gone or already voted is answered with an error.
        if questions[0]:
            await rng.choice(present).send({"type": "question.vote", "question_id": rng.randint(1, questions[0])})

    async def churn() -> None:
        if away and (rng.random() < 0.5 or len(present) < 5):
            person = away.pop(rng.randrange(len(away)))
            await person.join()
            present.append(person)
        else:
            person = present.pop(rng.randrange(len(present)))
            await person.leave()
            away.append(person)

    hand_up = [False]

    async def hand() -> None:
        hand_up[0] = not hand_up[0]
        await present[0].send({"type": "hand.raise" if hand_up[0] else "hand.lower"})

    return [
        asyncio.create_task(captions(organizer, stop, rng)),
        asyncio.create_task(every(CHAT_EVERY_S, stop, chat)),
        asyncio.create_task(every(QUESTION_EVERY_S, stop, ask)),
        asyncio.create_task(every(VOTE_EVERY_S, stop, vote)),
        asyncio.create_task(every(CHURN_EVERY_S, stop, churn)),
        asyncio.create_task(every(HAND_EVERY_S, stop, hand)),
    ]


LANGUAGES = ("en", "fr", "es", "ar", "zh", "ru")


def page_weight(base: str, cookie: str, path: str, language: str = "en") -> tuple[int, int]:
    """Bytes of a page's HTML and of every script and style sheet it loads (modules it imports too), in a
    language: outside English common.js fetches the page's JSON catalogue, unless the page carries its
    messages (the lite page's #page-messages), which are then part of its HTML. Returns (the bytes as
    read, the bytes on the wire for a browser that accepts gzip: the server compresses static files)."""
    cookies = {"forumlive_session": cookie, "forumlive_lang": language}
    total = wire = 0
    with httpx2.Client(base_url=base, cookies=cookies, headers={"Accept-Encoding": "gzip"}) as client:

        def fetch(url: str) -> bytes:
            nonlocal total, wire
            response = client.get(url)
            total += len(response.content)
            wire += response.num_bytes_downloaded
            return response.content

        html = fetch(path).decode()
        pending = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
        seen: set[str] = set()
        while pending:
            url = pending.pop()
            if url in seen:
                continue
            seen.add(url)
            body = fetch(url).decode()
            # Static imports only: the lite page loads media.js when sound is asked for.
            pending += re.findall(r'^import .* from "(/static/[^"]+)"', body, flags=re.M)
        if language != "en" and "/static/common.js" in seen and 'id="page-messages"' not in html:
            fetch(f"/static/i18n/{language}.json")
        return total, wire


async def measure(duration: float, audience_n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        session_id, cookies, organizer_cookie = seed(data_dir, audience_n + 2)
        port = free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "forumlive"), "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_up(f"{base}/healthz", server)
            room = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}"

            def headers(cookie: str) -> dict[str, str]:
                return {"Origin": base, "Cookie": f"forumlive_session={cookie}"}

            organizer = Person(room, headers(organizer_cookie))
            await organizer.join()
            await organizer.send({"type": "room.state", "state": "live"})
            stop = asyncio.Event()
            full, lite = Meter(), Meter()
            viewers = [
                asyncio.create_task(measured_viewer(room, headers(cookies[0]), full, stop)),
                asyncio.create_task(measured_viewer(f"{room}/lite?track=human", headers(cookies[1]), lite, stop)),
            ]
            audience = [Person(room, headers(c)) for c in cookies[2:]]
            for person in audience:
                await person.join()
            traffic = await session_traffic(organizer, audience, stop, 1)
            await asyncio.sleep(duration)
            stop.set()
            await asyncio.gather(*traffic, *viewers)
            for person in [organizer, *audience]:
                await person.leave()
            paths = {"full": f"/sessions/{session_id}/room", "lite": f"/sessions/{session_id}/lite"}
            pages = {
                name: {code: page_weight(base, cookies[i], path, code) for code in LANGUAGES}
                for i, (name, path) in enumerate(paths.items())
            }
        finally:
            server.terminate()
            server.wait(timeout=10)
    failed = [reason for person in [organizer, *audience] for reason in person.closed]
    return {"full": full, "lite": lite, "pages": pages, "failed_sends": failed}


def kbps(nbytes: float, duration: float) -> float:
    return round(nbytes * 8 / 1000 / duration, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--audience", type=int, default=30)
    args = parser.parse_args()
    result = asyncio.run(measure(args.duration, args.audience))
    rows = []
    for name in ("lite", "full"):
        meter: Meter = result[name]
        wire = meter.down + meter.up
        rows.append(
            {
                "page": name,
                "kbps": kbps(wire, args.duration),
                "tcpip_kbps": kbps(wire + TCPIP_BYTES * meter.frames, args.duration),
                "down_bytes": meter.down,
                "up_bytes": meter.up,
                "frames": meter.frames,
                "welcome_bytes": meter.welcome,
                "page_kib": round(result["pages"][name]["en"][0] / 1024, 1),
                "page_kib_gzip": round(result["pages"][name]["en"][1] / 1024, 1),
                "page_kib_by_language": {code: round(b[0] / 1024, 1) for code, b in result["pages"][name].items()},
                "page_kib_gzip_by_language": {code: round(b[1] / 1024, 1) for code, b in result["pages"][name].items()},
                "top_kinds": ", ".join(f"{k} {v}" for k, v in sorted(meter.kinds.items(), key=lambda kv: -kv[1])[:4]),
            }
        )
    lite, full = rows
    summary = {
        "lite_kbps": lite["kbps"],
        "full_kbps": full["kbps"],
        "lite_tcpip_kbps": lite["tcpip_kbps"],
        "full_tcpip_kbps": full["tcpip_kbps"],
        "ratio": round(full["kbps"] / lite["kbps"], 1) if lite["kbps"] else None,
        "lite_page_kib": lite["page_kib"],
        "full_page_kib": full["page_kib"],
        "lite_page_kib_max": max(lite["page_kib_by_language"].values()),
        "lite_page_kib_gzip": lite["page_kib_gzip"],
        "lite_page_kib_gzip_max": max(lite["page_kib_gzip_by_language"].values()),
        "full_page_kib_max": max(full["page_kib_by_language"].values()),
        "target_kbps": TARGET_KBPS,
        "duration_s": args.duration,
        "audience": args.audience,
        "failed_sends": len(result["failed_sends"]),
    }
    print(
        table(
            rows,
            ["page", "kbps", "tcpip_kbps", "down_bytes", "up_bytes", "frames", "welcome_bytes"]
            + ["page_kib", "page_kib_gzip"],
        )
    )
    for row in rows:
        print(f"{row['page']}: largest kinds (bytes): {row['top_kinds']}")
        print(f"{row['page']}: page KiB by language: {row['page_kib_by_language']}")
        print(f"{row['page']}: on the wire with gzip: {row['page_kib_gzip_by_language']}")
    path = write_results("lite", summary, rows)
    print(f"lite {summary['lite_kbps']} kbit/s (target < {TARGET_KBPS}); full page's events {summary['full_kbps']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
