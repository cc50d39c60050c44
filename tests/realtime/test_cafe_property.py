"""Property tests of café seating and rotation (realtime/cafe.py) on generated tables and people."""

from __future__ import annotations

import random
from collections import Counter
from itertools import product

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime.cafe import (
    CafeTable,
    Guest,
    InvalidCafe,
    NotEnoughSeats,
    encounters,
    is_even,
    objective,
    random_rotation,
    repeat_encounters,
    rotate,
    seat,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STAKEHOLDERS = ["government", "business", "civil_society", "academia", None]
REGIONS = ["AFR", "AMS", "ASP", "EUR", None]


@st.composite
def cafes(draw, max_tables: int = 5, max_seats: int = 6, hosts: bool = True):
    """Tables with seats and perhaps hosts, and people present (hosts among them or away)."""
    n_tables = draw(st.integers(1, max_tables))
    seats = draw(st.lists(st.integers(1, max_seats), min_size=n_tables, max_size=n_tables))
    count = draw(st.integers(0, sum(seats)))
    people = [Guest(100 + i, draw(st.sampled_from(STAKEHOLDERS)), draw(st.sampled_from(REGIONS))) for i in range(count)]
    host_ids: list[int | None] = [None] * n_tables
    if hosts:
        for i in range(n_tables):
            if draw(st.booleans()):
                # A present person, or someone away (id 900+).
                candidates = [g.id for g in people if g.id not in host_ids] + [900 + i]
                host_ids[i] = draw(st.sampled_from(candidates))
    tables = [CafeTable(i + 1, f"topic {i + 1}", seats[i], host_ids[i]) for i in range(n_tables)]
    return tables, people


def check_seating(tables: list[CafeTable], people: list[Guest], seating: dict[int, tuple[int, ...]]) -> None:
    """Everyone present sits exactly once, no table is over its seats, hosts sit at their tables, tables are even."""
    seated = [pid for members in seating.values() for pid in members]
    assert sorted(seated) == sorted(g.id for g in people)
    assert set(seating) == {t.id for t in tables}
    present = {g.id for g in people}
    for t in tables:
        assert len(seating[t.id]) <= t.seats
        if t.host_id in present:
            assert seating[t.id][0] == t.host_id
    sizes = {t.id: len(seating[t.id]) for t in tables}
    assert is_even(sizes, {t.id: t.seats for t in tables})


@FAST
@given(cafes())
def test_seat_fills_evenly_within_seats_and_hosts_at_their_tables(cafe):
    """seat: everyone once, seats never exceeded, hosts at their own table, sizes differ by ≤ 1 where seats allow."""
    tables, people = cafe
    check_seating(tables, people, seat(tables, people))


@FAST
@given(st.integers(2, 8), st.integers(2, 6), st.data())
def test_seat_spreads_each_stakeholder_type(n_tables, seats, data):
    """Without hosts and with equal tables, each stakeholder type's count differs by at most one between tables."""
    count = data.draw(st.integers(0, n_tables * seats))
    people = [Guest(i + 1, data.draw(st.sampled_from(STAKEHOLDERS)), None) for i in range(count)]
    tables = [CafeTable(i + 1, "t", seats) for i in range(n_tables)]
    seating = seat(tables, people)
    kind = {g.id: g.stakeholder for g in people}
    for stakeholder in {g.stakeholder for g in people} - {None}:
        counts = [sum(kind[p] == stakeholder for p in members) for members in seating.values()]
        assert max(counts) - min(counts) <= 1, (stakeholder, counts)


@FAST
@given(st.integers(2, 8), st.integers(2, 6), st.data())
def test_seat_spreads_regions_within_one_stakeholder_type(n_tables, seats, data):
    """When everyone is of one stakeholder type, each region's count differs by at most one between tables."""
    count = data.draw(st.integers(0, n_tables * seats))
    people = [Guest(i + 1, "business", data.draw(st.sampled_from(REGIONS))) for i in range(count)]
    tables = [CafeTable(i + 1, "t", seats) for i in range(n_tables)]
    seating = seat(tables, people)
    region = {g.id: g.region for g in people}
    for r in set(region.values()) - {None}:
        counts = [sum(region[p] == r for p in members) for members in seating.values()]
        assert max(counts) - min(counts) <= 1, (r, counts)


@FAST
@given(cafes(), st.integers(1, 3), st.randoms(use_true_random=False))
def test_rotate_keeps_hosts_seats_and_evenness_over_rounds(cafe, rounds, rnd):
    """rotate: hosts never move, seats never exceeded, even tables, also when people leave and arrive."""
    tables, people = cafe
    seating = seat(tables, people)
    met = encounters(seating)
    for round_no in range(rounds):
        # Someone may leave and someone may arrive between rounds.
        present = [g for g in people if rnd.random() > 0.2]
        if len(present) < sum(t.seats for t in tables) and rnd.random() < 0.5:
            present.append(Guest(500 + round_no, "business", "EUR"))
        nxt = rotate(tables, present, seating, met)
        check_seating(tables, present, nxt)  # includes: every present host at the head of their own table
        people, seating = present, nxt
        met |= encounters(seating)


def brute_force(tables, people, previous, met):
    """The least (stays, repeat encounters) over every even seating that keeps hosts at their tables."""
    present = {g.id for g in people}
    hosts = {t.host_id: t.id for t in tables if t.host_id in present}
    movers = [g.id for g in people if g.id not in hosts]
    seats = {t.id: t.seats for t in tables}
    best = None
    for choice in product([t.id for t in tables], repeat=len(movers)):
        seating = {t.id: [h for h, tid in hosts.items() if tid == t.id] for t in tables}
        for pid, tid in zip(movers, choice, strict=True):
            seating[tid].append(pid)
        sizes = {tid: len(m) for tid, m in seating.items()}
        if any(sizes[tid] > seats[tid] for tid in sizes) or not is_even(sizes, seats):
            continue
        value = objective(tables, people, seating, previous, met)[:2]
        best = value if best is None else min(best, value)
    return best


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cafes(max_tables=3, max_seats=3), st.integers(0, 3))
def test_rotate_is_optimal_on_small_cafes(cafe, seed):
    """On cafés small enough to try every seating, rotation reaches the fewest stays, then the fewest repeats."""
    tables, people = cafe
    first = seat(tables, people, seed=seed)
    second = rotate(tables, people, first, encounters(first), seed=seed)
    met = encounters(first) | encounters(second)
    third = rotate(tables, people, second, met, seed=seed)
    assert objective(tables, people, second, first, encounters(first))[:2] == brute_force(
        tables, people, first, encounters(first)
    )
    assert objective(tables, people, third, second, met)[:2] == brute_force(tables, people, second, met)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(10, 16), st.integers(3, 4), st.integers(0, 1000))
def test_rotate_reaches_no_repeats_when_the_room_allows(n_tables, size, seed):
    """Sparse generated populations (hosts at a third of the tables), three rotations: no pair meets twice."""
    rng = random.Random(seed)
    people = [Guest(i + 1, rng.choice(STAKEHOLDERS), rng.choice(REGIONS)) for i in range(n_tables * size)]
    tables = [CafeTable(i + 1, "t", size + 1, people[i].id if i % 3 == 0 else None) for i in range(n_tables)]
    seating = seat(tables, people, seed=seed)
    met = encounters(seating)
    for _ in range(3):
        seating = rotate(tables, people, seating, met, seed=seed)
        # The lower bound, 0, is reached (each person meets at most 4 * (size - 1) of n_tables * size - 1).
        assert repeat_encounters(seating, met) == 0
        met |= encounters(seating)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(5, 8), st.integers(5, 6), st.integers(0, 1000))
def test_rotate_beats_random_rotation_on_crowded_cafes(n_tables, size, seed):
    """Crowded cafés where repeats cannot all be avoided: over three rotations, fewer repeats than random rotation."""
    rng = random.Random(seed)
    people = [Guest(i + 1, rng.choice(STAKEHOLDERS), rng.choice(REGIONS)) for i in range(n_tables * size)]
    tables = [CafeTable(i + 1, "t", size, people[i].id if i % 2 == 0 else None) for i in range(n_tables)]
    ours_seating = baseline_seating = seat(tables, people, seed=seed)
    ours_met, baseline_met = encounters(ours_seating), encounters(baseline_seating)
    ours = baseline = 0
    for r in range(3):
        ours_seating = rotate(tables, people, ours_seating, ours_met, seed=seed)
        baseline_seating = random_rotation(tables, people, seed=seed + r)
        ours += repeat_encounters(ours_seating, ours_met)
        baseline += repeat_encounters(baseline_seating, baseline_met)
        ours_met |= encounters(ours_seating)
        baseline_met |= encounters(baseline_seating)
    assert ours < baseline


def test_rotate_moves_everyone_but_hosts():
    """Two tables of three: the two guests at each table move, the hosts stay."""
    tables = [CafeTable(1, "water", 3, host_id=1), CafeTable(2, "energy", 3, host_id=4)]
    people = [Guest(i) for i in range(1, 7)]
    first = {1: (1, 2, 3), 2: (4, 5, 6)}
    second = rotate(tables, people, first)
    assert second[1][0] == 1 and second[2][0] == 4
    assert set(second[1][1:]) == {5, 6} and set(second[2][1:]) == {2, 3}


def test_rotate_with_more_people_than_seats_is_refused():
    """A rotation with more people than seats raises NotEnoughSeats."""
    tables = [CafeTable(1, "water", 2)]
    with pytest.raises(NotEnoughSeats, match="3 people but only 2 seats"):
        rotate(tables, [Guest(1), Guest(2), Guest(3)], {1: (1, 2)})


@pytest.mark.parametrize(
    ("tables", "people", "message"),
    [
        ([], [], "no tables"),
        ([CafeTable(1, "a", 2), CafeTable(1, "b", 2)], [], "same id"),
        ([CafeTable(1, "a", 0)], [], "no seats"),
        ([CafeTable(1, " ", 2)], [], "no topic"),
        ([CafeTable(1, "a", 2, 5), CafeTable(2, "b", 2, 5)], [], "hosts two tables"),
        ([CafeTable(1, "a", 2)], [Guest(1), Guest(1)], "listed twice"),
    ],
)
def test_bad_cafes_are_refused(tables, people, message):
    """Duplicate ids, seatless or topicless tables and double hosts raise InvalidCafe naming the fault."""
    with pytest.raises(InvalidCafe, match=message):
        seat(tables, people)


def test_rotate_refuses_unknown_tables():
    """A previous seating that names a table the café does not have raises InvalidCafe."""
    with pytest.raises(InvalidCafe, match="unknown tables"):
        rotate([CafeTable(1, "a", 2)], [Guest(1)], {7: (1,)})


def test_counter_of_types_is_balanced_at_scale():
    """500 people at 80 tables: every stakeholder type spread to within one per table."""
    rng = random.Random(3)
    people = [Guest(i, rng.choice(STAKEHOLDERS[:4]), rng.choice(REGIONS[:4])) for i in range(500)]
    tables = [CafeTable(i, "t", 7) for i in range(80)]
    seating = seat(tables, people)
    kind = {g.id: g.stakeholder for g in people}
    for stakeholder in STAKEHOLDERS[:4]:
        counts = Counter(sum(kind[p] == stakeholder for p in m) for m in seating.values())
        assert max(counts) - min(counts) <= 1
