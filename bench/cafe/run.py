"""Knowledge café seating and rotation: 500 people at 80 tables over 4 rounds, against random rotation.

A generated population (stakeholder types and ITU regions drawn with uneven weights, 10 % undisclosed)
sits at 80 tables of 7 seats. Two set-ups: every table hosted (the classic café: hosts stay, guests move)
and no hosts. Per seed and set-up, ``realtime.cafe.seat`` places everyone, then ``rotate`` makes rounds 2
to 4; the baseline seats the same way, then shuffles the non-hosts into the same table sizes at random
(``random_rotation``) for rounds 2 to 4. Measured: the seconds for the seating plus three rotations
(``time.perf_counter`` around those calls only, one core), repeat encounters (pairs at one table who
already sat together in an earlier round, summed over rounds 2 to 4), people who stayed at their table,
and same-stakeholder pairs at a table in the last round (the mix).

``summary`` holds the hosted set-up: ``seconds`` the median over the seeds, ``repeat_encounters`` and
``random_repeat_encounters`` the totals over the seeds. Results: ``bench/results/cafe.json``.

    python bench/cafe/run.py [--seeds N] [--quick]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import table, write_results  # noqa: E402
from realtime.cafe import (  # noqa: E402
    CafeTable,
    Guest,
    Seating,
    encounters,
    objective,
    random_rotation,
    repeat_encounters,
    rotate,
    seat,
)

PEOPLE = 500
TABLES = 80
SEATS = 7
ROUNDS = 4
STAKEHOLDERS = {
    "government": 30,
    "private_sector": 20,
    "civil_society": 20,
    "academia": 12,
    "technical_community": 8,
    "international_organization": 6,
    "other": 4,
}
REGIONS = {"africa": 22, "americas": 16, "arab_states": 10, "asia_pacific": 24, "cis": 6, "europe": 22}


def population(seed: int) -> list[Guest]:
    rng = random.Random(seed)

    def draw(weights: dict[str, int]) -> str | None:
        return None if rng.random() < 0.1 else rng.choices(list(weights), list(weights.values()))[0]

    return [Guest(i + 1, draw(STAKEHOLDERS), draw(REGIONS)) for i in range(PEOPLE)]


def café(hosted: bool) -> list[CafeTable]:
    return [CafeTable(i + 1, f"topic {i + 1}", SEATS, (i + 1) if hosted else None) for i in range(TABLES)]


def run(tables: list[CafeTable], people: list[Guest], seed: int, baseline: bool) -> dict[str, Any]:
    began = time.perf_counter()
    seating: Seating = seat(tables, people, seed=seed)
    seconds = time.perf_counter() - began
    met = encounters(seating)
    repeats = stays = 0
    for r in range(1, ROUNDS):
        began = time.perf_counter()
        if baseline:
            nxt = random_rotation(tables, people, seed=seed * 100 + r)
        else:
            nxt = rotate(tables, people, seating, met, seed=seed)
        seconds += time.perf_counter() - began
        assert sorted(p for m in nxt.values() for p in m) == sorted(g.id for g in people)
        stays += objective(tables, people, nxt, seating, met)[0]
        repeats += repeat_encounters(nxt, met)
        met |= encounters(nxt)
        seating = nxt
    mix = objective(tables, people, seating)[2]
    return {"seconds": round(seconds, 3), "repeats": repeats, "stayed": stays, "same_type_pairs": mix}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one seed, results not written")
    args = parser.parse_args()
    seeds = range(1 if args.quick else args.seeds)
    rows = []
    for hosted in (True, False):
        for seed in seeds:
            people = population(seed)
            tables = café(hosted)
            for baseline in (False, True):
                result = run(tables, people, seed, baseline)
                rows.append(
                    {
                        "hosts": "every table" if hosted else "none",
                        "seed": seed,
                        "method": "random rotation" if baseline else "rotate",
                        **result,
                    }
                )
    print(table(rows, ["hosts", "seed", "method", "seconds", "repeats", "stayed", "same_type_pairs"]))
    hosted_rows = [r for r in rows if r["hosts"] == "every table"]
    ours = [r for r in hosted_rows if r["method"] == "rotate"]
    theirs = [r for r in hosted_rows if r["method"] == "random rotation"]
    summary = {
        "people": PEOPLE,
        "tables": TABLES,
        "rounds": ROUNDS,
        "seeds": len(seeds),
        "seconds": statistics.median(r["seconds"] for r in ours),
        "repeat_encounters": sum(r["repeats"] for r in ours),
        "random_repeat_encounters": sum(r["repeats"] for r in theirs),
        "stayed": sum(r["stayed"] for r in ours),
        "random_stayed": sum(r["stayed"] for r in theirs),
    }
    summary["no_hosts_repeat_encounters"] = sum(
        r["repeats"] for r in rows if r["hosts"] == "none" and r["method"] == "rotate"
    )
    summary["no_hosts_random_repeat_encounters"] = sum(
        r["repeats"] for r in rows if r["hosts"] == "none" and r["method"] == "random rotation"
    )
    print(summary)
    if not args.quick:
        path = write_results("cafe", summary, rows, method=__doc__)
        print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
