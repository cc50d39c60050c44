"""bench/relay: one publisher, N subscribers through the pass-through relay and through aiortc's stock
re-encoding relay (``MediaRelay``), measured in the same run.

    python bench/relay/run.py [--quick] [--window 8] [--clients 2]

Each (relay, kind) group starts a bench server process (server.py, one relay), a publisher process
(publisher.py) and ``--clients`` subscriber processes (subscribers.py), then measures a publisher-only
baseline and adds subscribers step by step up to each N. At each step, after a warm-up, it reads over a
steady window: the server process's CPU time (/proc/PID/stat, all threads, as % of one core), the
frames the publisher made and the frames each subscriber received. A group stops at the first N that is
not delivered at full rate (>= 95 % of the frames sent, on average over the subscribers).

Writes bench/results/relay.json (not with ``--quick`` or ``--group``); ``summary.audio_subs_per_core`` and
friends follow FORMULA below.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import table, write_results  # noqa: E402
from bench.relay.wire import LOOP_ENV, request  # noqa: E402

HERE = Path(__file__).resolve().parent
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
FULL_RATE = 0.95  # delivered / sent, averaged over subscribers
# A process at this much of one core (or the machine at this share of all its cores) is taken to be the
# bottleneck when a step falls short of full rate.
BUSY_PCT = 90.0
FORMULA = (
    "subs_per_core = N / (server_cpu_pct / 100) at the largest N delivered at full rate (>= 95 % of the "
    "frames sent, mean over subscribers); server_cpu_pct is the whole server process (all threads, "
    "publisher-only baseline included) as % of one core. *_marginal = (100 - baseline_cpu_pct) / "
    "cpu_per_sub_pct, where cpu_per_sub_pct = (server_cpu_pct - baseline_cpu_pct) / N."
)
FULL = {
    ("passthrough", "audio"): [1, 10, 50, 100],
    ("reencode", "audio"): [1, 10, 25],
    ("passthrough", "video"): [1, 10, 25, 50],
    ("reencode", "video"): [1, 10],
}
QUICK = {("passthrough", "audio"): [1, 10], ("reencode", "audio"): [1, 10]}
COLUMNS = [
    "relay",
    "kind",
    "subs",
    "server_cpu_pct",
    "cpu_per_sub_pct",
    "sent_per_s",
    "delivered_per_s",
    "delivered_pct",
    "worst_pct",
    "kbps_per_sub",
    "clients_cpu_pct",
    "publisher_cpu_pct",
    "machine_busy_pct",
    "bottleneck",
]


def cpu_seconds(pid: int) -> float:
    """User + system time of a process and all its threads."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime, stime (fields 14 and 15)


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class Child:
    """A bench process driven by JSON lines on its stdin and stdout; its stderr goes to a log file."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name, self.proc, self.log = name, proc, log

    @classmethod
    async def start(cls, name: str, script: str, args: list[str], logs: Path) -> Child:
        log = logs / f"{name}.log"
        with log.open("w") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(HERE / script),
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                limit=2**22,
            )
        return cls(name, proc, log)

    async def read(self, timeout_s: float) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        except TimeoutError:
            raise RuntimeError(f"{self.name}: no reply in {timeout_s:.0f} s; log:\n{self.tail()}") from None
        if not line:
            raise RuntimeError(f"{self.name} exited; log:\n{self.tail()}")
        return json.loads(line)

    async def command(self, message: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read(timeout_s)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.stdin.write(b'{"cmd": "stop"}\n')
                await self.proc.stdin.drain()
                await asyncio.wait_for(self.proc.wait(), 15)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()


@dataclass
class Snapshot:
    at: float
    server_cpu: float
    publisher_cpu: float
    clients_cpu: list[float]
    machine: tuple[int, int]
    sent: dict[str, Any]
    received: list[dict[str, Any]]
    server: dict[str, Any]


@dataclass
class Group:
    relay: str
    kind: str
    port: int
    server: Child
    publisher: Child
    clients: list[Child]

    async def snapshot(self) -> Snapshot:
        sent, received, server = await asyncio.gather(
            self.publisher.command({"cmd": "stats"}),
            asyncio.gather(*(c.command({"cmd": "stats"}) for c in self.clients)),
            request(self.port, {"op": "stats"}),
        )
        return Snapshot(
            time.monotonic(),
            self.server.cpu(),
            self.publisher.cpu(),
            [c.cpu() for c in self.clients],
            machine_busy(),
            sent,
            list(received),
            server,
        )

    async def add(self, total: int) -> float:
        """Bring the subscribers up to ``total``, spread evenly over the client processes."""
        have = [len((await c.command({"cmd": "stats"}))["frames"]) for c in self.clients]
        per = [total // len(self.clients) + (i < total % len(self.clients)) for i in range(len(self.clients))]
        started = time.monotonic()
        replies = await asyncio.gather(
            *(c.command({"cmd": "add", "count": p - h}, 300) for c, p, h in zip(self.clients, per, have, strict=True))
        )
        failed = sum(r["failed"] for r in replies)
        if failed:
            print(f"  {failed} subscribers failed to connect", flush=True)
        return time.monotonic() - started

    async def stop(self) -> None:
        for child in [*self.clients, self.publisher]:
            await child.stop()
        if self.server.proc.returncode is None:
            self.server.proc.terminate()
            await self.server.proc.wait()


def measure(group: Group, before: Snapshot, after: Snapshot, subs: int, baseline_cpu: float | None) -> dict[str, Any]:
    seconds = after.at - before.at
    server_cpu = 100 * (after.server_cpu - before.server_cpu) / seconds
    clients_cpu = [100 * (a - b) / seconds for a, b in zip(after.clients_cpu, before.clients_cpu, strict=True)]
    sent_per_s = (after.sent["frames"] - before.sent["frames"]) / seconds
    rates, kbps = [], []
    for b, a in zip(before.received, after.received, strict=True):
        for frames_b, frames_a, bytes_b, bytes_a in zip(b["frames"], a["frames"], b["bytes"], a["bytes"], strict=False):
            rates.append((frames_a - frames_b) / seconds)
            kbps.append(8 * (bytes_a - bytes_b) / seconds / 1000)
    busy = after.machine[0] - before.machine[0], after.machine[1] - before.machine[1]
    row: dict[str, Any] = {
        "relay": group.relay,
        "kind": group.kind,
        "subs": subs,
        "server_cpu_pct": round(server_cpu, 1),
        "cpu_per_sub_pct": round((server_cpu - baseline_cpu) / subs, 2) if subs and baseline_cpu is not None else "",
        "sent_per_s": round(sent_per_s, 1),
        "publisher_cpu_pct": round(100 * (after.publisher_cpu - before.publisher_cpu) / seconds, 1),
        "publisher_kbps": round(8 * (after.sent["bytes"] - before.sent["bytes"]) / seconds / 1000, 1),
        "publisher_rtp_per_s": round((after.sent["packets"] - before.sent["packets"]) / seconds, 1),
        "machine_busy_pct": round(100 * busy[0] / busy[1], 1) if busy[1] else 0.0,
        "server_queued": after.server.get("queued", 0),
        "server_dropped": after.server.get("dropped", 0),
        "server_failed_peers": after.server.get("failed", 0),
        "window_s": round(seconds, 1),
    }
    if subs:
        mean = sum(rates) / len(rates) if rates else 0.0
        row |= {
            "connected": len(rates),
            "delivered_per_s": round(mean, 1),
            "delivered_pct": round(100 * mean / sent_per_s, 1) if sent_per_s else 0.0,
            "worst_pct": round(100 * min(rates, default=0.0) / sent_per_s, 1) if sent_per_s else 0.0,
            "kbps_per_sub": round(sum(kbps) / len(kbps), 1) if kbps else 0.0,
            "clients_cpu_pct": round(sum(clients_cpu), 1),
            "busiest_client_cpu_pct": round(max(clients_cpu), 1),
        }
        row["full_rate"] = len(rates) == subs and row["delivered_pct"] >= 100 * FULL_RATE
        row["bottleneck"] = "" if row["full_rate"] else bottleneck(row)
    return row


def bottleneck(row: dict[str, Any]) -> str:
    """Which process ran out of CPU when a step was not delivered at full rate (a guess, said as one)."""
    busy_machine = row["machine_busy_pct"] >= BUSY_PCT
    if row["server_cpu_pct"] >= BUSY_PCT:
        return "server saturated" + (" (machine busy too)" if busy_machine else "")
    if row["busiest_client_cpu_pct"] >= BUSY_PCT:
        return "clients saturated"
    if busy_machine:
        return "machine saturated"
    return "not CPU?"


async def run_group(relay: str, kind: str, steps: list[int], args: argparse.Namespace, logs: Path) -> list[dict]:
    tag = f"{relay}-{kind}"
    server = await Child.start(f"{tag}-server", "server.py", ["--mode", relay], logs)
    port = int((await server.read(30))["port"])
    publisher = await Child.start(
        f"{tag}-publisher",
        "publisher.py",
        ["--port", str(port), "--kind", kind, "--video-kbps", str(args.video_kbps)],
        logs,
    )
    clients: list[Child] = []
    group = Group(relay, kind, port, server, publisher, clients)
    rows = []
    try:
        await publisher.read(60)
        for i in range(args.clients):
            clients.append(await Child.start(f"{tag}-clients{i}", "subscribers.py", ["--port", str(port)], logs))
            await clients[-1].read(30)
        await asyncio.sleep(args.warmup)
        print(f"{tag}: publisher only", flush=True)
        before = await group.snapshot()
        await asyncio.sleep(args.window)
        baseline = measure(group, before, await group.snapshot(), 0, None)
        rows.append(baseline)
        for subs in steps:
            connect_s = await group.add(subs)
            print(f"{tag}: {subs} subscribers (connected in {connect_s:.1f} s)", flush=True)
            await asyncio.sleep(args.warmup)
            before = await group.snapshot()
            await asyncio.sleep(args.window)
            row = measure(group, before, await group.snapshot(), subs, baseline["server_cpu_pct"])
            row["connect_s"] = round(connect_s, 1)
            rows.append(row)
            if not row["full_rate"]:
                print(
                    f"{tag}: {row['delivered_pct']} % delivered at N={subs} ({row['bottleneck']}); stopping", flush=True
                )
                break
    finally:
        await group.stop()
    return rows


def per_core(rows: list[dict[str, Any]], relay: str, kind: str) -> dict[str, Any]:
    """The formula (FORMULA) at the largest N delivered at full rate."""
    group = [r for r in rows if r["relay"] == relay and r["kind"] == kind]
    full = [r for r in group if r["subs"] and r["full_rate"]]
    if not full:
        return {"subs_per_core": 0.0, "subs_per_core_marginal": 0.0, "max_full_rate_subs": 0}
    top = max(full, key=lambda r: r["subs"])
    baseline = next(r["server_cpu_pct"] for r in group if r["subs"] == 0)
    per_sub = max(top["cpu_per_sub_pct"], 0.01)
    return {
        "subs_per_core": round(top["subs"] / max(top["server_cpu_pct"], 0.1) * 100, 1),
        "subs_per_core_marginal": round((100 - baseline) / per_sub, 1),
        "max_full_rate_subs": top["subs"],
        "server_cpu_pct": top["server_cpu_pct"],
        "kbps_per_sub": top["kbps_per_sub"],
        "stopped_at": next(
            (f"N={r['subs']}: {r['bottleneck']}" for r in group if r["subs"] and not r["full_rate"]), ""
        ),
    }


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    plan = QUICK if args.quick else FULL
    if args.group:
        plan = {}
        for spec in args.group:
            name, _, steps = spec.partition("=")
            relay, _, kind = name.partition("-")
            plan[(relay, kind)] = [int(n) for n in steps.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        for (relay, kind), steps in plan.items():
            rows += await run_group(relay, kind, steps, args, Path(tmp))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="audio only, N = 1 and 10, short windows")
    parser.add_argument("--window", type=float, default=None, help="seconds measured at each N (default 8, quick 4)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before each window (default 3, quick 2)")
    parser.add_argument("--clients", type=int, default=2, help="subscriber processes")
    parser.add_argument(
        "--group", action="append", help="run only this group, e.g. passthrough-video=1,10 (repeatable)"
    )
    parser.add_argument(
        "--loop", choices=["uvloop", "asyncio"], default="uvloop", help="event loop of the bench processes"
    )
    parser.add_argument("--video-kbps", type=int, default=1250, help="the publisher's VP8 target bitrate")
    args = parser.parse_args()
    args.window = args.window or (4.0 if args.quick else 8.0)
    args.warmup = args.warmup or (2.0 if args.quick else 3.0)
    os.environ[LOOP_ENV] = args.loop  # read by wire.run in every bench process
    started = time.monotonic()
    rows = asyncio.run(run_all(args))
    print(table(rows, COLUMNS))
    audio = per_core(rows, "passthrough", "audio")
    video = per_core(rows, "passthrough", "video")
    reencode_audio = per_core(rows, "reencode", "audio")
    reencode_video = per_core(rows, "reencode", "video")
    summary = {
        "audio_subs_per_core": audio["subs_per_core"],
        "video_subs_per_core": video["subs_per_core"],
        "reencode_audio_subs_per_core": reencode_audio["subs_per_core"],
        "reencode_video_subs_per_core": reencode_video["subs_per_core"],
        "audio_subs_per_core_marginal": audio["subs_per_core_marginal"],
        "video_subs_per_core_marginal": video["subs_per_core_marginal"],
        "video_kbps_per_sub": video.get("kbps_per_sub", 0.0),
        "audio_target_met": audio["subs_per_core"] >= 100,
        "video_target_met": video["subs_per_core"] >= 50,
    }
    print(json.dumps(summary, indent=2))
    if args.quick or args.group:
        print("quick run: bench/results/relay.json left as it was")
        return
    path = write_results(
        "relay",
        summary,
        rows,
        formula=FORMULA,
        groups={
            "passthrough_audio": audio,
            "passthrough_video": video,
            "reencode_audio": reencode_audio,
            "reencode_video": reencode_video,
        },
        settings={
            "quick": args.quick,
            "window_s": args.window,
            "warmup_s": args.warmup,
            "client_processes": args.clients,
            "event_loop": args.loop,
            "video": f"VP8 640x480 30 fps, target {args.video_kbps} kbit/s",
            "audio": "Opus 20 ms from tests/data/speech/jfk.wav, looped",
            "full_rate": f">= {FULL_RATE:.0%} of frames sent, mean over subscribers",
        },
        duration_s=round(time.monotonic() - started),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
