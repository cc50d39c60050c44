"""bench/fanout: caption-sized events from one publisher to N viewers through one server process,
against a bare ``websockets`` broadcast server measured in the same run.

    python bench/fanout/run.py [--viewers 1000,5000] [--duration 30] [--rate 5]

Writes bench/results/fanout.json; its ``summary`` holds the figures at the largest N.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from datetime import date, timedelta
from pathlib import Path

import httpx2
import itsdangerous

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import DELIVERY_COLUMNS, pick, report, rss_bytes  # noqa: E402
from server.settings import load_settings  # noqa: E402
from server.storage import migrate  # noqa: E402
from server.storage.db import Database  # noqa: E402
from server.storage.models import Forum, Person, Session  # noqa: E402
from server.storage.types import utcnow  # noqa: E402

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(data_dir: Path, viewers: int, database_url: str | None = None) -> tuple[int, list[str], str]:
    """A live session, an organizer (the publisher) and N viewer accounts; returns signed cookies."""
    settings = load_settings(environ={}, env_file=None, data_dir=data_dir, database_url=database_url)
    database = Database(settings.effective_database_url)
    migrate.upgrade(database.engine)

    def work(db):  # noqa: ANN001, ANN202
        forum = Forum(slug="bench", name="Bench", start_date=date.today(), end_date=date.today())
        db.add(forum)
        db.flush()
        now = utcnow()
        session = Session(
            forum_id=forum.id,
            code="B1",
            title="Fan-out",
            type="high_level_policy_session",
            starts_at=now,
            ends_at=now + timedelta(hours=2),
            status="live",
        )
        organizer = Person(email="publisher@bench.invalid", password_hash="-", name="Publisher", is_organizer=True)  # noqa: S106 (no sign-in)
        db.add_all([session, organizer])
        db.flush()
        people = [
            Person(email=f"v{i}@bench.invalid", password_hash="-", name=f"Viewer {i}")  # noqa: S106
            for i in range(viewers)
        ]
        db.add_all(people)
        db.flush()
        return session.id, organizer.id, [p.id for p in people]

    session_id, organizer_id, viewer_ids = database.run_write(work)
    database.dispose()
    signer = itsdangerous.TimestampSigner(settings.secret_key)

    def cookie(person_id: int) -> str:
        return signer.sign(b64encode(json.dumps({"person_id": person_id}).encode())).decode()

    return session_id, [cookie(i) for i in viewer_ids], cookie(organizer_id)


# Load processes: one Python process cannot read 25,000 frames/s quickly enough to measure a
# server's latency rather than its own; two share the viewers (and the machine's two cores). The
# publisher runs in a third process of its own, so that its sends keep their rate and its socket its
# pings however busy the viewers' processes are.
LOAD_PROCESSES = 2


def run_load(common: list[str] | list[list[str]], viewers: int, duration: float) -> dict:
    """Start the load processes, let them connect, then publish; merge what they measured.

    ``common`` is the load processes' arguments, or one list per load process (their viewers may then
    talk to different servers); the publisher uses the first process's arguments.
    """
    per_process = common if common and isinstance(common[0], list) else [common] * LOAD_PROCESSES
    per = -(-viewers // LOAD_PROCESSES)
    procs = []
    for index in range(LOAD_PROCESSES + 1):
        if index < LOAD_PROCESSES:
            first, count = index * per, min(per, viewers - index * per)
            args = [*per_process[index], "--first", str(first), "--viewers", str(count)]
        else:
            args = [*per_process[0], "--viewers", "0", "--publish"]
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "load.py"), *args, "--duration", str(duration)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for proc in procs:
            line = proc.stdout.readline()
            if line.strip() != "READY":
                raise RuntimeError(f"load process failed: {line} {proc.stderr.read()[-2000:]}")
        for proc in procs:
            proc.stdin.write("GO\n")
            proc.stdin.flush()
        # The publisher (last) first; then the viewers' processes stop listening after a grace period.
        parts = []
        for proc in reversed(procs):
            out, err = proc.communicate("STOP\n", timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(err[-2000:])
            parts.insert(0, json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    sent = parts[-1]["sent"]
    latencies = sorted(x for part in parts for x in part["latencies"])
    received = sum(part["received"] for part in parts)

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else -1.0

    return {
        "viewers": viewers,
        "sent": sent,
        "expected": sent * viewers,
        "received": received,
        "lost": sent * viewers - received,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(1000 * latencies[-1], 1) if latencies else None,
        "delivered_per_s": round(received / duration, 1),
        "connect_s": max(part["connect_s"] for part in parts),
        "failed_viewers": sum(part["failed_viewers"] for part in parts),
        "failures": sorted({f for part in parts for f in part.get("failures", [])})[:5],
        "publisher_error": parts[-1].get("publisher_error"),
    }


def wait_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited")
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.2)
    raise TimeoutError(url)


def measure_room(viewers: int, duration: float, rate: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        session_id, cookies, publisher = seed(data_dir, viewers)
        cookie_file = Path(tmp) / "cookies.txt"
        cookie_file.write_text("\n".join(cookies))
        port = free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "forumlive"), "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(f"http://127.0.0.1:{port}/healthz", server)
            common = [
                "--url",
                f"ws://127.0.0.1:{port}/ws/sessions/{session_id}",
                "--origin",
                f"http://127.0.0.1:{port}",
                "--mode",
                "room",
                "--cookies",
                str(cookie_file),
                "--publisher-cookie",
                publisher,
                "--rate",
                str(rate),
            ]
            return _measure(server, common, viewers, duration)
        except BaseException:
            server.terminate()
            raise


def measure_bare(viewers: int, duration: float, rate: float) -> dict:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "bare_server.py"), str(port)])
    try:
        wait_for_port(port, server)
    except BaseException:
        server.terminate()
        raise
    common = [
        "--url",
        f"ws://127.0.0.1:{port}/",
        "--origin",
        f"http://127.0.0.1:{port}",
        "--mode",
        "bare",
        "--rate",
        str(rate),
    ]
    return _measure(server, common, viewers, duration)


def _measure(server: subprocess.Popen, common: list[str] | list[list[str]], viewers: int, duration: float) -> dict:
    """Run the load against a started server, sampling its memory; stop the server afterwards."""
    try:
        idle = rss_bytes(server.pid)
        sampler = RssSampler(server.pid)
        result = run_load(common, viewers, duration)
        result["bytes_per_connection"] = int((sampler.peak() - idle) / viewers)
        return result
    finally:
        server.terminate()
        stop(server)


def stop(server: subprocess.Popen) -> None:
    """Wait for a terminated server; one still closing its sockets after 30 s (an overloaded run) is killed."""
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port}")


class RssSampler:
    """Samples a process's resident memory in a thread; ``peak()`` stops and returns the highest."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.samples, self._stop = pid, [rss_bytes(pid)], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.samples.append(rss_bytes(self.pid))
            except OSError:
                return

    def peak(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", default="1000,5000")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=5.0)
    args = parser.parse_args()
    rows = []
    for n in [int(v) for v in args.viewers.split(",")]:
        for name, measure in (("bare websockets", measure_bare), ("forumlive room", measure_room)):
            print(f"measuring {name} with {n} viewers ...", flush=True)
            result = measure(n, args.duration, args.rate)
            rows.append({"server": name, **result})
    for row in rows:
        bare = next(r for r in rows if r["server"] == "bare websockets" and r["viewers"] == row["viewers"])
        row["ratio_vs_bare"] = (
            round(row["delivered_per_s"] / bare["delivered_per_s"], 3) if bare["delivered_per_s"] else None
        )
    columns = ["server", *DELIVERY_COLUMNS, "ratio_vs_bare", "bytes_per_connection"]
    top = max(r["viewers"] for r in rows)
    ours = next(r for r in rows if r["server"] == "forumlive room" and r["viewers"] == top)
    summary = {
        "viewers": top,
        **pick(ours, ["p50_ms", "p99_ms", "max_ms", "lost", "ratio_vs_bare", "bytes_per_connection"]),
        "rate_per_s": args.rate,
        "duration_s": args.duration,
    }
    report("fanout", rows, columns, summary)


if __name__ == "__main__":
    main()
