"""Knowledge café seating and rotation: pure functions, no I/O.

A café has tables (a topic, a number of seats, an optional host). ``seat`` places the people present
at the tables; ``rotate`` moves them between rounds. Both fill the tables evenly (sizes differ by at
most one where the seats allow) and never move a host. Within that, they minimise, in this order:

1. people (other than hosts) who stay at the table they sat at last round (``rotate`` only);
2. repeat encounters: pairs who sit together again after meeting in an earlier round (``rotate`` only);
3. pairs of the same stakeholder type at one table (the point of a multistakeholder café);
4. pairs of the same region at one table.

Small cafés (at most ``EXACT_LIMIT`` ways to seat the people who move) are solved exactly by branch
and bound. Otherwise the method is a greedy start followed by local search: swaps of two people between tables, and
moves from a table of one size to a table one smaller (which keep the tables even). Each step must
lower the objective above, compared as a tuple; random kicks then shake a seating where someone still
stays or meets someone again, keeping the best found. A seating of 500 people at 80 tables takes well under
a second; ``bench/cafe`` measures it against random rotation.

Exceptions::

    CafeError (ValueError)
     ├── InvalidCafe       bad tables or people (duplicate ids, no seats, a host at two tables)
     └── NotEnoughSeats    more people than seats
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

Seating = dict[int, tuple[int, ...]]  # table id -> the people at it (the host first, then by id)
Pair = tuple[int, int]  # two person ids, the smaller first

# Local search: swap candidates tried per person when improving the mix (not the repeats, where every
# candidate is tried). 40 keeps a 500-person seating under a second on one core.
MIX_TRIES_PER_PERSON = 40
# Random kicks out of a local optimum while someone still stays or meets someone again.
KICKS = 60
# Cafés with at most this many seatings to try (tables ** people to move) are solved exactly.
EXACT_LIMIT = 20_000


class CafeError(ValueError):
    """A café request that cannot be met; the message says why."""


class InvalidCafe(CafeError):
    """Bad tables or people."""


class NotEnoughSeats(CafeError):
    """More people than seats."""


@dataclass(frozen=True)
class CafeTable:
    """A table: its topic, how many seats it has and its host (a person id), if any."""

    id: int
    topic: str
    seats: int
    host_id: int | None = None


@dataclass(frozen=True)
class Guest:
    """Someone to seat, with what mixing looks at (``None``: not disclosed, never counted as alike)."""

    id: int
    stakeholder: str | None = None
    region: str | None = None


def pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


def encounters(seating: Mapping[int, Sequence[int]]) -> set[Pair]:
    """Every pair of people who sit at the same table."""
    return {pair(a, b) for people in seating.values() for a, b in combinations(people, 2)}


def repeat_encounters(seating: Mapping[int, Sequence[int]], met: Iterable[Pair]) -> int:
    """How many pairs at the same table in ``seating`` are in ``met`` (they sat together before)."""
    known = set(met)
    return sum(1 for p in encounters(seating) if p in known)


def check_tables(tables: Sequence[CafeTable]) -> None:
    """Raises ``InvalidCafe`` unless ids are unique, every table has a seat and a topic, and no one hosts two tables."""
    if not tables:
        raise InvalidCafe("the café has no tables")
    ids = [t.id for t in tables]
    if len(set(ids)) != len(ids):
        raise InvalidCafe("two tables have the same id")
    for t in tables:
        if t.seats < 1:
            raise InvalidCafe(f"table {t.id} has no seats")
        if not t.topic.strip():
            raise InvalidCafe(f"table {t.id} has no topic")
    hosts = [t.host_id for t in tables if t.host_id is not None]
    if len(set(hosts)) != len(hosts):
        raise InvalidCafe("one person hosts two tables")


def _check_people(tables: Sequence[CafeTable], people: Sequence[Guest]) -> None:
    check_tables(tables)
    ids = [g.id for g in people]
    if len(set(ids)) != len(ids):
        raise InvalidCafe("a person is listed twice")
    seats = sum(t.seats for t in tables)
    if len(people) > seats:
        raise NotEnoughSeats(f"{len(people)} people but only {seats} seats")


def table_sizes(tables: Sequence[CafeTable], count: int, hosted: Iterable[int] = ()) -> dict[int, int]:
    """How many people each table gets when ``count`` people are spread evenly.

    Water-filling: every table gets ``min(seats, level)`` for the highest level that fits, then the
    people left over get one more seat each at tables with room, hosted tables first (so that with
    fewer people than tables every present host still has a seat).

    Raises:
        NotEnoughSeats: ``count`` exceeds the seats.
    """
    seats = sum(t.seats for t in tables)
    if count > seats:
        raise NotEnoughSeats(f"{count} people but only {seats} seats")
    level = 0
    while sum(min(t.seats, level + 1) for t in tables) <= count and level < max(t.seats for t in tables):
        level += 1
    sizes = {t.id: min(t.seats, level) for t in tables}
    left = count - sum(sizes.values())
    first = set(hosted)
    for t in sorted(tables, key=lambda t: t.id not in first):
        if left and sizes[t.id] < t.seats:
            sizes[t.id] += 1
            left -= 1
    return sizes


def is_even(sizes: Mapping[int, int], seats: Mapping[int, int]) -> bool:
    """True when no table has two more people than a table that still has a free seat."""
    open_sizes = [sizes[t] for t in sizes if sizes[t] < seats[t]]
    return not open_sizes or max(sizes.values()) <= min(open_sizes) + 1


class _Plan:
    """A seating being improved: who sits where, with counters that make a step's cost cheap to compute."""

    def __init__(
        self,
        tables: Sequence[CafeTable],
        people: Sequence[Guest],
        previous: Mapping[int, int],
        met: Mapping[int, set[int]],
    ) -> None:
        self.seats = {t.id: t.seats for t in tables}
        self.guests = {g.id: g for g in people}
        self.previous = previous  # person -> table last round
        self.met = met  # person -> people met in earlier rounds
        self.hosts = {t.host_id for t in tables if t.host_id is not None and t.host_id in self.guests}
        self.where: dict[int, int] = {}
        self.members: dict[int, set[int]] = {t.id: set() for t in tables}
        self.stake: dict[int, Counter[str]] = {t.id: Counter() for t in tables}
        self.region: dict[int, Counter[str]] = {t.id: Counter() for t in tables}

    def put(self, pid: int, table: int) -> None:
        guest = self.guests[pid]
        self.where[pid] = table
        self.members[table].add(pid)
        if guest.stakeholder is not None:
            self.stake[table][guest.stakeholder] += 1
        if guest.region is not None:
            self.region[table][guest.region] += 1

    def take(self, pid: int) -> None:
        guest = self.guests[pid]
        table = self.where.pop(pid)
        self.members[table].discard(pid)
        if guest.stakeholder is not None:
            self.stake[table][guest.stakeholder] -= 1
        if guest.region is not None:
            self.region[table][guest.region] -= 1

    def cost(self, pid: int, table: int, without: int | None = None) -> tuple[int, int, int, int]:
        """What ``pid`` adds at ``table`` (as if ``pid`` and ``without`` were not there):
        (stays, repeat pairs, same-stakeholder pairs, same-region pairs)."""
        guest = self.guests[pid]
        here = self.members[table]
        stay = int(pid not in self.hosts and self.previous.get(pid) == table)
        met = self.met.get(pid, ())
        repeats = sum(1 for other in here if other in met and other != pid and other != without)
        stake = region = 0
        if guest.stakeholder is not None:
            stake = self.stake[table][guest.stakeholder] - (self.where.get(pid) == table)
            if without is not None and self.guests[without].stakeholder == guest.stakeholder:
                stake -= self.where.get(without) == table
        if guest.region is not None:
            region = self.region[table][guest.region] - (self.where.get(pid) == table)
            if without is not None and self.guests[without].region == guest.region:
                region -= self.where.get(without) == table
        return (stay, repeats, stake, region)

    def load(self, where: Mapping[int, int]) -> None:
        """Put everyone back where ``where`` says (to return to the best seating found)."""
        for pid in list(self.where):
            self.take(pid)
        for pid, table in where.items():
            self.put(pid, table)

    def seating(self) -> Seating:
        host_of = {self.where[h]: h for h in self.hosts}
        return {
            table: tuple(sorted(people, key=lambda p: (p != host_of.get(table), p)))
            for table, people in self.members.items()
        }


def _add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _sub(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x - y for x, y in zip(a, b, strict=True))


ZERO = (0, 0, 0, 0)


def _swap_gain(plan: _Plan, a: int, b: int) -> tuple[int, ...]:
    """How the objective changes if ``a`` and ``b`` (at different tables) trade places; negative is better."""
    x, y = plan.where[a], plan.where[b]
    before = _add(plan.cost(a, x), plan.cost(b, y))
    after = _add(plan.cost(a, y, without=b), plan.cost(b, x, without=a))
    return _sub(after, before)


def _move_gain(plan: _Plan, a: int, y: int) -> tuple[int, ...]:
    return _sub(plan.cost(a, y), plan.cost(a, plan.where[a]))


def _can_move(plan: _Plan, a: int, y: int) -> bool:
    """A move that keeps the tables even: from a table of size s+1 to one of size s with a free seat."""
    x = plan.where[a]
    return x != y and len(plan.members[x]) == len(plan.members[y]) + 1 and len(plan.members[y]) < plan.seats[y]


def _improve_person(plan: _Plan, a: int, candidates: Sequence[int], tables: Sequence[int]) -> bool:
    """Make the best improving swap (with one of ``candidates``) or move of ``a``; True if one was made."""
    best, best_step = ZERO, None
    x = plan.where[a]
    for b in candidates:
        if b == a or b in plan.hosts or plan.where[b] == x:
            continue
        gain = _swap_gain(plan, a, b)
        if gain < best:
            best, best_step = gain, ("swap", b)
    for y in tables:
        if _can_move(plan, a, y):
            gain = _move_gain(plan, a, y)
            if gain < best:
                best, best_step = gain, ("move", y)
    if best_step is None:
        return False
    if best_step[0] == "swap":
        b = best_step[1]
        y = plan.where[b]
        plan.take(a)
        plan.take(b)
        plan.put(a, y)
        plan.put(b, x)
    else:
        plan.take(a)
        plan.put(a, best_step[1])
    return True


def _local_search(plan: _Plan, rng: random.Random, rounds: int = 8) -> None:
    """Improve until no step helps (or ``rounds`` passes): every candidate for people in conflict
    (staying or meeting someone again), a sample for the rest (the mix)."""
    movable = sorted(p for p in plan.where if p not in plan.hosts)
    tables = sorted(plan.members)
    for _ in range(rounds):
        improved = False
        order = movable[:]
        rng.shuffle(order)
        for a in order:
            here = plan.cost(a, plan.where[a])
            if here == ZERO:
                continue  # nothing to gain for ``a``; a partner who gains is visited in turn
            conflict = here[:2] != (0, 0)
            if conflict or len(movable) <= MIX_TRIES_PER_PERSON:
                candidates: Sequence[int] = movable
            else:
                candidates = rng.sample(movable, MIX_TRIES_PER_PERSON)
            improved |= _improve_person(plan, a, candidates, tables)
        if not improved:
            return


def _kick(plan: _Plan, rng: random.Random, kicks: int) -> None:
    """Escape local optima while people still stay or meet again: swap one of them with someone at
    random, repair around the swap, and keep the result unless it is worse (ties are kept, a random walk
    across plateaus); the best seating seen wins."""
    movable = sorted(p for p in plan.where if p not in plan.hosts)
    tables = sorted(plan.members)
    best, best_where = _objective(plan), dict(plan.where)
    for _ in range(kicks):
        conflicted = [p for p in movable if plan.cost(p, plan.where[p])[:2] != (0, 0)]
        if not conflicted:
            break
        a = rng.choice(conflicted)
        others = [b for b in movable if plan.where[b] != plan.where[a]]
        if not others:
            break
        b = rng.choice(others)
        x, y = plan.where[a], plan.where[b]
        plan.take(a)
        plan.take(b)
        plan.put(a, y)
        plan.put(b, x)
        # Repair around the swap and a few others in conflict (all of them would cost O(people²) per kick).
        around = {a, b, *rng.sample(conflicted, min(len(conflicted), 8))}
        for _ in range(4):
            if not any([_improve_person(plan, p, movable, tables) for p in around]):
                break
        value = _objective(plan)
        if value < best:
            best, best_where = value, dict(plan.where)
        elif value > best:
            plan.load(best_where)
    plan.load(best_where)


def _exact(plan: _Plan, movers: Sequence[int], most: int) -> None:
    """Branch and bound over every even seating of ``movers`` (the hosts already placed); keeps the best.
    The cost of a partial seating only grows as people are added, so a branch no better than the best
    complete seating is cut."""
    tables = sorted(plan.members)
    best: list[tuple[int, ...] | dict[int, int] | None] = [None, None]

    def visit(i: int, cost: tuple[int, ...]) -> None:
        if best[0] is not None and cost >= best[0]:  # type: ignore[operator]
            return
        if i == len(movers):
            sizes = {t: len(m) for t, m in plan.members.items()}
            if is_even(sizes, plan.seats):
                best[0], best[1] = cost, dict(plan.where)
            return
        pid = movers[i]
        for t in tables:
            if len(plan.members[t]) < min(most, plan.seats[t]):
                step = plan.cost(pid, t)
                plan.put(pid, t)
                visit(i + 1, _add(cost, step))
                plan.take(pid)

    visit(0, _objective(plan))
    if best[1] is not None:
        plan.load(best[1])  # type: ignore[arg-type]


def _objective(plan: _Plan) -> tuple[int, ...]:
    total = ZERO
    for pid, table in plan.where.items():
        total = _add(total, plan.cost(pid, table))
    # Pair terms were counted from both ends.
    return (total[0], total[1] // 2, total[2] // 2, total[3] // 2)


def _mix_key(guest: Guest, stake_sizes: Counter[str | None]) -> tuple[int, str, str]:
    # Larger stakeholder groups first, undisclosed last; within a group, by region.
    return (-stake_sizes[guest.stakeholder] if guest.stakeholder else 1, guest.stakeholder or "", guest.region or "")


def seat(tables: Sequence[CafeTable], people: Sequence[Guest], *, seed: int = 0) -> Seating:
    """Seat everyone present: hosts at their tables, the others spread evenly and mixed.

    The start deals people round the tables, largest stakeholder group first and each group by region,
    so that every type is spread over the tables (counts differ by at most one when no host or seat
    limit is in the way); local search then improves the mix of regions and around hosts.

    Raises:
        InvalidCafe: duplicate ids, a table without seats or topic, a person hosting two tables.
        NotEnoughSeats: more people than seats.
    """
    _check_people(tables, people)
    plan = _Plan(tables, people, {}, {})
    sizes = table_sizes(tables, len(people), (t.id for t in tables if t.host_id in plan.hosts))
    for t in tables:
        if t.host_id in plan.hosts:
            plan.put(t.host_id, t.id)
    stake_sizes = Counter(g.stakeholder for g in people)
    guests = sorted((g for g in people if g.id not in plan.hosts), key=lambda g: (_mix_key(g, stake_sizes), g.id))
    # Tables with the most guest seats first, so each dealing pass is a prefix of the same order.
    order = sorted(tables, key=lambda t: (-(sizes[t.id] - len(plan.members[t.id])), t.id))
    queue = iter(guests)
    while len(plan.where) < len(people):
        for t in order:
            if len(plan.members[t.id]) < sizes[t.id]:
                guest = next(queue, None)
                if guest is None:
                    break
                plan.put(guest.id, t.id)
    _local_search(plan, random.Random(seed))
    return plan.seating()


def rotate(
    tables: Sequence[CafeTable],
    people: Sequence[Guest],
    seating: Mapping[int, Sequence[int]],
    met: Iterable[Pair] = (),
    *,
    seed: int = 0,
) -> Seating:
    """The next round's seating: hosts stay, everyone else moves so as to meet as many new people as possible.

    Args:
        tables: the café's tables.
        people: everyone present now (people in ``seating`` who left are dropped, newcomers are seated).
        seating: the round that ends.
        met: pairs who sat together in any earlier round, ``seating`` included (see ``encounters``).

    Raises:
        InvalidCafe, NotEnoughSeats: as for ``seat``; also a seating naming an unknown table.
    """
    _check_people(tables, people)
    unknown = set(seating) - {t.id for t in tables}
    if unknown:
        raise InvalidCafe(f"the seating names unknown tables {sorted(unknown)}")
    known: dict[int, set[int]] = defaultdict(set)
    for a, b in met:
        known[a].add(b)
        known[b].add(a)
    for a, b in encounters(seating):
        known[a].add(b)
        known[b].add(a)
    previous = {pid: table for table, members in seating.items() for pid in members}
    rng = random.Random(seed)
    plan = _Plan(tables, people, previous, known)
    sizes = table_sizes(tables, len(people), (t.id for t in tables if t.host_id in plan.hosts))
    for t in tables:
        if t.host_id in plan.hosts:
            plan.put(t.host_id, t.id)
    # The most constrained first: people who have met the most, then a random order among equals.
    guests = [g.id for g in people if g.id not in plan.hosts]
    rng.shuffle(guests)
    guests.sort(key=lambda pid: -len(known.get(pid, ())))
    if len(tables) ** len(guests) <= EXACT_LIMIT:
        _exact(plan, guests, max(sizes.values()))
        return plan.seating()
    for pid in guests:
        free = [t for t in sizes if len(plan.members[t]) < sizes[t]]
        best = min(free, key=lambda t: (plan.cost(pid, t), -(sizes[t] - len(plan.members[t])), t))
        plan.put(pid, best)
    _local_search(plan, rng)
    _kick(plan, rng, KICKS)
    return plan.seating()


def objective(
    tables: Sequence[CafeTable],
    people: Sequence[Guest],
    seating: Mapping[int, Sequence[int]],
    previous: Mapping[int, Sequence[int]] | None = None,
    met: Iterable[Pair] = (),
) -> tuple[int, int, int, int]:
    """(stays, repeat encounters, same-stakeholder pairs, same-region pairs) of a seating, as minimised above.

    ``previous`` is the round before (for stays); ``met`` the pairs met before, ``previous`` included.
    """
    known: dict[int, set[int]] = defaultdict(set)
    for a, b in set(met) | encounters(previous or {}):
        known[a].add(b)
        known[b].add(a)
    before = {pid: table for table, members in (previous or {}).items() for pid in members}
    plan = _Plan(tables, people, before, known)
    for table, members in seating.items():
        for pid in members:
            plan.put(pid, table)
    stays, repeats, stake, region = _objective(plan)
    return (stays, repeats, stake, region)


def random_rotation(tables: Sequence[CafeTable], people: Sequence[Guest], *, seed: int = 0) -> Seating:
    """A baseline: hosts at their tables, everyone else shuffled into the same even table sizes at random."""
    _check_people(tables, people)
    present = {g.id for g in people}
    hosted = {t.id: t.host_id for t in tables if t.host_id in present}
    sizes = table_sizes(tables, len(people), hosted)
    others = [g.id for g in people if g.id not in hosted.values()]
    random.Random(seed).shuffle(others)
    seating: Seating = {}
    for t in tables:
        take = sizes[t.id] - (t.id in hosted)
        head = (hosted[t.id],) if t.id in hosted else ()
        seating[t.id] = head + tuple(sorted(others[:take]))
        others = others[take:]
    return seating
