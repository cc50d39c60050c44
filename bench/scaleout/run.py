"""bench/scaleout: caption-sized events from one publisher to N viewers spread over several server
processes that share the room through Redis (PostgreSQL for storage), against the single-process
figure from bench/fanout measured in the same run.

    python bench/scaleout/run.py [--viewers 10000] [--processes 2] [--duration 30] [--rate 5]

The publisher's process owns the room (it opens the room first); viewers are split evenly over the
processes, so half of them get each event through Redis (owner → stream → replica → socket). Redis
and PostgreSQL are throw-away servers started from the installed binaries (as the tests do).

Writes bench/results/scaleout.json; ``summary`` holds viewers, processes, p99_ms, lost and
single_process_p99_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import DELIVERY_COLUMNS, pick, report  # noqa: E402
from bench.fanout.run import free_port, measure_room, run_load, seed, stop, wait_up  # noqa: E402
from tests.services import create_database, postgres_server, redis_process  # noqa: E402


async def open_room(url: str, origin: str, cookie: str) -> None:
    """Connect once as the publisher so that this process takes the room's lease (it owns the room)."""
    from websockets.asyncio.client import connect

    async with connect(url, origin=origin, additional_headers={"Cookie": f"forumlive_session={cookie}"}) as ws:
        await ws.send('{"type":"hello","v":1}')
        welcome = json.loads(await ws.recv())
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"the room did not open: {welcome}")


def measure_cluster(viewers: int, processes: int, duration: float, rate: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as pg, redis_process() as redis:
        database_url = create_database(pg, "scaleout")
        data_dir = Path(tmp) / "data"
        session_id, cookies, publisher = seed(data_dir, viewers, database_url)
        cookie_file = Path(tmp) / "cookies.txt"
        cookie_file.write_text("\n".join(cookies))
        ports = [free_port() for _ in range(processes)]
        origins = [f"http://127.0.0.1:{port}" for port in ports]
        env = {
            **os.environ,
            "FORUMLIVE_DATA_DIR": str(data_dir),
            "FORUMLIVE_DATABASE_URL": database_url,
            "FORUMLIVE_REDIS_URL": redis.url,
            "FORUMLIVE_ALLOWED_ORIGINS": ",".join(origins),
            "FORUMLIVE_LIVE_CAPTIONS": "0",
        }
        forumlive = str(Path(sys.executable).parent / "forumlive")
        servers = [
            subprocess.Popen(
                [forumlive, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for port in ports
        ]
        try:
            for port, server in zip(ports, servers, strict=True):
                wait_up(f"http://127.0.0.1:{port}/healthz", server)
            urls = [f"ws://127.0.0.1:{port}/ws/sessions/{session_id}" for port in ports]
            asyncio.run(open_room(urls[0], origins[0], publisher))
            common = [
                [
                    "--url",
                    urls[i % processes],
                    "--origin",
                    origins[i % processes],
                    "--mode",
                    "room",
                    "--cookies",
                    str(cookie_file),
                    "--publisher-cookie",
                    publisher,
                    "--rate",
                    str(rate),
                ]
                for i in range(2)  # bench/fanout's two load processes: the first publishes, to the owner
            ]
            return run_load(common, viewers, duration)
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                stop(server)


def attempt(
    setup: str, viewers: int, measure: Callable[[int, float, float], dict], duration: float, rate: float
) -> dict:
    """One measurement; a run that cannot complete (the machine too small for N) is a row that says why."""
    # The machine's 1-minute load average before and after: on a shared machine, how much else was running.
    before = os.getloadavg()[0]
    try:
        row = {"setup": setup, **measure(viewers, duration, rate)}
    except (RuntimeError, TimeoutError, OSError) as exc:
        reason = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
        print(f"  did not complete: {reason}", flush=True)
        row = {"setup": setup, "viewers": viewers, "error": reason}
    return {**row, "load_avg": [round(before, 1), round(os.getloadavg()[0], 1)]}


def sustained(row: dict) -> bool:
    """Every event reached every viewer, and every viewer stayed connected."""
    return "error" not in row and row["lost"] == 0 and row["failed_viewers"] == 0 and not row.get("publisher_error")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", default="10000,2000", help="one N or several, e.g. 10000,5000")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=5.0)
    args = parser.parse_args()
    if args.processes != 2:
        parser.error("--processes: 2 for now (the two load processes each talk to one server process)")
    sizes = [int(v) for v in args.viewers.split(",")]
    rows = []
    for n in sizes:
        print(f"measuring one process (bench/fanout's room) with {n} viewers ...", flush=True)
        rows.append(attempt("1 process (SQLite, in-process)", n, measure_room, args.duration, args.rate))
        print(f"measuring {args.processes} processes (Redis, PostgreSQL) with {n} viewers ...", flush=True)
        rows.append(
            attempt(
                f"{args.processes} processes (Redis, PostgreSQL)",
                n,
                lambda n, d, r: measure_cluster(n, args.processes, d, r),
                args.duration,
                args.rate,
            )
        )
    top = max(sizes)
    single, shared = (r for r in rows if r["viewers"] == top)
    figures = ["p50_ms", "p99_ms", "max_ms", "lost", "delivered_per_s", "failed_viewers"]
    summary = {
        "viewers": top,
        "processes": args.processes,
        **pick(shared, figures),
        **pick(single, ["p99_ms", "lost", "delivered_per_s", "failed_viewers"], prefix="single_process_"),
        "largest_sustained_viewers": max((r["viewers"] for r in rows[1::2] if sustained(r)), default=0),
        "single_process_largest_sustained_viewers": max((r["viewers"] for r in rows[::2] if sustained(r)), default=0),
        "rate_per_s": args.rate,
        "duration_s": args.duration,
    }
    columns = ["setup", *DELIVERY_COLUMNS, "load_avg", "publisher_error", "error"]
    report("scaleout", rows, columns, summary)


if __name__ == "__main__":
    main()
