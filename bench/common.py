"""Shared by the benchmarks: the machine, date and commit, tables, and results files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    memory_kb = 0
    try:
        with open("/proc/meminfo") as handle:
            memory_kb = int(handle.readline().split()[1])
    except OSError:
        pass
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [["" if row.get(c) is None else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, rule, *body])


# Columns of a delivery measurement (bench/fanout's run_load), after the row's own label.
DELIVERY_COLUMNS = [
    "viewers",
    "failed_viewers",
    "sent",
    "lost",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "delivered_per_s",
    "connect_s",
]


def pick(row: dict[str, Any], keys: list[str], prefix: str = "") -> dict[str, Any]:
    """``row``'s values of ``keys``, named with ``prefix`` (None where it has none: a run that did not complete)."""
    return {prefix + key: row.get(key) for key in keys}


def report(name: str, rows: list[dict[str, Any]], columns: list[str], summary: dict[str, Any], **extra: Any) -> Path:
    """Print the table, write ``results/NAME.json`` and say where."""
    print(table(rows, columns))
    path = write_results(name, summary, rows, **extra)
    print(f"wrote {path}")
    return path


def write_results(name: str, summary: dict[str, Any], rows: list[dict[str, Any]], **extra: Any) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "summary": summary,
        "rows": rows,
        **extra,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
