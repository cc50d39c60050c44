"""Key figures over a million visits: SQL on SQLite and on PostgreSQL against a naive in-Python
aggregation of the same rows, in the same run.

A synthetic forum (250 sessions, 1,000,000 visits, 185 countries; ``server/reports/synthetic.py``) is
written to a SQLite file and to a throw-away PostgreSQL started from the installed binaries (or
``FORUMLIVE_BENCH_POSTGRES_URL``). Each timing is the median of three runs of ``compute`` (the figures
the report page, API and CLI use). The baseline reads the visits, sessions and people out of SQLite and
aggregates them in Python (``synthetic.expected``), as a script without the database's help would. The
figures of all three are checked to be equal. Results: ``bench/results/report.json``.

    python bench/report/run.py [--visits N] [--quick] [--no-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import table, write_results  # noqa: E402
from server.reports.figures import KeyFigures, Scope, compute  # noqa: E402
from server.reports.synthetic import Generated, expected, generate  # noqa: E402
from server.storage import migrate  # noqa: E402
from server.storage.db import Database  # noqa: E402

TARGET_SQLITE_S = 2.0
CHECKED = ("cumulative_attendance", "unique_participants", "countries_engaged", "by_region", "by_gender")


def _timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def _progress(done: int, total: int) -> None:
    print(f"\r  writing visits {done:>9,}/{total:,}", end="", file=sys.stderr, flush=True)


def _seed(url: str, visits: int) -> tuple[Database, Generated, float]:
    database = Database(url)
    migrate.upgrade(database.engine)
    began = time.perf_counter()
    with database.session() as db:
        data = generate(db, sessions=250, visits=visits, countries=185, progress=_progress)
        db.commit()
    print(file=sys.stderr)
    return database, data, time.perf_counter() - began


def _compute(database: Database, forum_id: int) -> KeyFigures:
    with database.session() as db:
        return compute(db, Scope(forum_id))


def _naive(database: Database, forum_id: int) -> dict[str, Any]:
    """Read the rows out and aggregate in Python."""
    from sqlalchemy import text

    with database.engine.connect() as connection:
        sessions = [
            dict(row._mapping)
            for row in connection.execute(text("SELECT * FROM session WHERE forum_id = :f"), {"f": forum_id})
        ]
        for s in sessions:
            s["action_lines"], s["sdgs"], s["tags"] = [], [], []
        ids = {s["id"] for s in sessions}
        visits = [
            dict(row._mapping)
            for row in connection.execute(
                text("SELECT session_id, person_id, anonymous_key, channel, joined_at, left_at FROM attendance_visit")
            )
            if row.session_id in ids
        ]
        people = {row.id: dict(row._mapping) for row in connection.execute(text("SELECT * FROM person"))}
        external = [
            dict(row._mapping)
            for row in connection.execute(text("SELECT session_id, views FROM external_views"))
            if row.session_id in ids
        ]
    from datetime import UTC, datetime

    def aware(value: Any) -> Any:  # noqa: ANN401 - SQLite hands back text
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    for s in sessions:
        s["starts_at"], s["ends_at"] = aware(s["starts_at"]), aware(s["ends_at"])
    for v in visits:
        v["joined_at"], v["left_at"] = aware(v["joined_at"]), aware(v["left_at"])
    return expected(Generated(forum_id, sessions, people, visits, external))


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    given = os.environ.get("FORUMLIVE_BENCH_POSTGRES_URL")
    if given:
        yield given
        return
    from tests.services import create_database, postgres_server

    with postgres_server() as server:
        yield create_database(server, "report_bench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 visits, results not written")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    visits = 100_000 if args.quick else args.visits
    rows, summary = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"SQLite: writing a forum with {visits:,} visits", file=sys.stderr)
        sqlite, data, seeded_s = _seed(f"sqlite:///{tmp}/report.db", visits)
        sql_s, figures = _timed(lambda: _compute(sqlite, data.forum_id))
        naive_s, naive = _timed(lambda: _naive(sqlite, data.forum_id), repeat=1)
        for key in CHECKED:
            assert getattr(figures, key) == naive[key], f"SQL and naive figures differ on {key}"
        rows.append({"database": "sqlite", "how": "SQL (compute)", "visits": visits, "seconds": round(sql_s, 2)})
        rows.append({"database": "sqlite", "how": "naive Python", "visits": visits, "seconds": round(naive_s, 2)})
        summary.update(sqlite_1m_s=round(sql_s, 3), naive_1m_s=round(naive_s, 3), seed_sqlite_s=round(seeded_s, 1))
        sqlite.dispose()
        if not args.no_postgres:
            with _postgres() as url:
                print("PostgreSQL: writing the same forum", file=sys.stderr)
                pg, pg_data, seeded_pg_s = _seed(url, visits)
                pg_s, pg_figures = _timed(lambda: _compute(pg, pg_data.forum_id))
                for key in CHECKED:
                    assert getattr(pg_figures, key) == getattr(figures, key), f"PostgreSQL differs on {key}"
                rows.append(
                    {"database": "postgresql", "how": "SQL (compute)", "visits": visits, "seconds": round(pg_s, 2)}
                )
                summary.update(postgres_1m_s=round(pg_s, 3), seed_postgres_s=round(seeded_pg_s, 1))
                pg.dispose()
    for row in rows:
        row["vs naive"] = f"{naive_s / row['seconds']:.1f}x faster" if row["how"] != "naive Python" else "baseline"
    print(table(rows, ["database", "how", "visits", "seconds", "vs naive"]))
    summary.update(
        visits=visits,
        sqlite_target_s=TARGET_SQLITE_S,
        sqlite_target_met=summary["sqlite_1m_s"] <= TARGET_SQLITE_S,
        speedup_vs_naive=round(naive_s / summary["sqlite_1m_s"], 1),
    )
    print(summary)
    if not args.quick:
        path = write_results("report", summary, rows, method=__doc__)
        print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
