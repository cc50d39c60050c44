"""The bus: in-process and Redis Streams behind one interface, against a real redis-server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis
import redis.asyncio as aioredis

from realtime.bus import Backoff, Bus, BusClosed, Gap, GapReason, MemoryBus, Message, RedisBus, Subscription
from tests.services import RedisServer, redis_binary, redis_process, redis_server

FAST = Backoff(first_s=0.01, max_s=0.1)
WAIT_S = 5.0

BusFactory = Callable[..., Awaitable[Bus]]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """Key prefix of this test alone; its keys are deleted afterwards (the server may be a shared one)."""
    name = f"forumlive-test-{secrets.token_hex(4)}:"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"{name}*")
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def restartable_redis() -> Iterator[RedisServer]:
    if redis_binary() is None:
        pytest.skip("needs redis-server to restart")
    with redis_process() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def new_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """Makes buses of one kind that share their topics, as processes sharing one Redis do; closes them after.

    ``history`` is the messages kept per topic (the memory bus is made once, by the first call).
    """
    buses: list[Bus] = []

    async def make(history: int = 10_000) -> Bus:
        if request.param == "memory":
            if not buses:
                buses.append(MemoryBus(history=history))
            return buses[0]
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("prefix")
        bus = RedisBus(url, maxlen=history, prefix=prefix, backoff=FAST)
        await bus.start()
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


async def take(sub: Subscription, count: int, timeout_s: float = WAIT_S) -> list[Message | Gap]:
    """The next ``count`` items of a subscription, failing after ``timeout_s``."""
    items: list[Message | Gap] = []
    async with asyncio.timeout(timeout_s):
        async for item in sub:
            items.append(item)
            if len(items) == count:
                break
    return items


def payloads(items: list[Message | Gap]) -> list[bytes]:
    return [item.payload for item in items if isinstance(item, Message)]


async def test_messages_reach_every_subscriber_in_order(new_bus: BusFactory) -> None:
    """Every subscriber of a topic gets every message once, in publish order; other topics stay apart."""
    bus = await new_bus()
    subs = [await bus.subscribe("room:1") for _ in range(3)]
    other = await bus.subscribe("room:2")
    sent = [f"m{i}".encode() for i in range(200)]
    ids = [bus.publish("room:1", payload) for payload in sent]
    bus.publish("room:2", b"elsewhere")
    for sub in subs:
        got = await take(sub, len(sent))
        assert payloads(got) == sent
        assert [item.id for item in got if isinstance(item, Message)] == [await f for f in ids]
    assert payloads(await take(other, 1)) == [b"elsewhere"]


async def test_ids_increase_and_replay_after_an_id(new_bus: BusFactory) -> None:
    """``subscribe(after=id)`` replays the messages after that id, then goes on live without copies."""
    bus = await new_bus()
    first = await bus.subscribe("room:1")
    for i in range(10):
        bus.publish("room:1", f"m{i}".encode())
    seen = await take(first, 10)
    ids = [item.id for item in seen if isinstance(item, Message)]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    replay = await bus.subscribe("room:1", after=ids[5])
    bus.publish("room:1", b"m10")
    assert payloads(await take(replay, 5)) == [b"m6", b"m7", b"m8", b"m9", b"m10"]


async def test_replay_past_the_kept_history_marks_a_gap(new_bus: BusFactory) -> None:
    """A replay from an id the topic no longer keeps starts with a TRIMMED gap, then what is kept."""
    bus = await new_bus(history=10)
    ids = [bus.publish("room:1", f"m{i}".encode()) for i in range(300)]  # Redis trims whole nodes of 100 (MAXLEN ~)
    first = await ids[0]
    await bus.flushed()
    replay = await bus.subscribe("room:1", after=first)
    items = await take(replay, 2)
    assert items[0] == Gap(GapReason.TRIMMED)
    assert isinstance(items[1], Message) and items[1].payload != b"m1"


async def test_an_unknown_id_from_a_lost_history_replays_everything_after_a_reset_gap(new_bus: BusFactory) -> None:
    """An id newer than any the topic gave (from before its history was lost) gets a RESET gap and all kept."""
    bus = await new_bus()
    sub = await bus.subscribe("room:1")
    bus.publish("room:1", b"a")
    first = await take(sub, 1)
    replay = await bus.subscribe("room:1", after="99999999999999-0")
    assert await take(replay, 2) == [Gap(GapReason.RESET), *first]


async def test_two_redis_buses_see_the_same_order(redis_url: str, prefix: str) -> None:
    """Two processes publishing at once into one topic see the same sequence, each publisher's order kept."""
    async with RedisBus(redis_url, prefix=prefix) as a, RedisBus(redis_url, prefix=prefix) as b:
        sub_a, sub_b = await a.subscribe("room:1"), await b.subscribe("room:1")
        for i in range(100):
            a.publish("room:1", f"a{i}".encode())
            b.publish("room:1", f"b{i}".encode())
        seen_a, seen_b = await take(sub_a, 200), await take(sub_b, 200)
        assert seen_a == seen_b
        got = payloads(seen_a)
        assert [p for p in got if p.startswith(b"a")] == [f"a{i}".encode() for i in range(100)]
        assert [p for p in got if p.startswith(b"b")] == [f"b{i}".encode() for i in range(100)]


async def test_a_redis_restart_loses_nothing_published_while_it_was_down(restartable_redis: RedisServer) -> None:
    """Messages published while Redis is down wait in order and arrive once after it returns, after a RESET gap."""
    async with (
        RedisBus(restartable_redis.url, backoff=FAST) as publisher,
        RedisBus(restartable_redis.url, backoff=FAST) as reader,
    ):
        elsewhere, own = await reader.subscribe("room:1"), await publisher.subscribe("room:1")
        for i in range(20):
            publisher.publish("room:1", f"m{i}".encode())
        before = [f"m{i}".encode() for i in range(20)]
        assert payloads(await take(elsewhere, 20)) == before and payloads(await take(own, 20)) == before

        restartable_redis.stop()
        for i in range(20, 50):
            publisher.publish("room:1", f"m{i}".encode())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(publisher.flushed(), 0.3)
        assert publisher.pending == 30
        await asyncio.to_thread(restartable_redis.start)
        await asyncio.wait_for(publisher.flushed(), WAIT_S)

        after = [f"m{i}".encode() for i in range(20, 50)]
        for sub in (elsewhere, own):
            items = await take(sub, 31)
            assert items[0] == Gap(GapReason.RESET)
            assert payloads(items) == after
        publisher.publish("room:1", b"last")
        assert payloads(await take(elsewhere, 1)) == [b"last"]  # nothing more (no copies) came before it


async def test_messages_refused_for_now_wait_in_order(restartable_redis: RedisServer) -> None:
    """When Redis refuses writes for a while (out of memory here), messages wait in order instead of being lost."""
    admin = aioredis.Redis.from_url(restartable_redis.url)
    async with RedisBus(restartable_redis.url, backoff=FAST) as bus:
        sub = await bus.subscribe("room:1")
        await admin.config_set("maxmemory", 1)
        for i in range(10):
            bus.publish("room:1", f"m{i}".encode())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(bus.flushed(), 0.3)
        await admin.config_set("maxmemory", 0)
        assert payloads(await take(sub, 10)) == [f"m{i}".encode() for i in range(10)]
    await admin.aclose()


async def test_subscribing_while_redis_is_down_marks_a_gap_then_goes_live(restartable_redis: RedisServer) -> None:
    """A subscription made while Redis is unreachable starts with an UNAVAILABLE gap and works once it is back."""
    async with RedisBus(restartable_redis.url, backoff=FAST) as bus:
        restartable_redis.stop()
        sub = await bus.subscribe("room:1")
        assert await take(sub, 1) == [Gap(GapReason.UNAVAILABLE)]
        await asyncio.to_thread(restartable_redis.start)
        await bus.publish("room:1", b"hello")  # waits until Redis took it
        assert payloads(await take(sub, 1)) == [b"hello"]


async def test_a_slow_subscriber_loses_its_oldest_messages_and_is_told(new_bus: BusFactory) -> None:
    """A full queue drops its oldest messages and yields a SLOW gap with the count; other subscribers get all."""
    bus = await new_bus()
    slow = await bus.subscribe("room:1", maxsize=10)
    quick = await bus.subscribe("room:1")
    sent = [f"m{i}".encode() for i in range(50)]
    for payload in sent:
        bus.publish("room:1", payload)
    assert payloads(await take(quick, 50)) == sent
    items = await take(slow, 11)
    assert items[0] == Gap(GapReason.SLOW, missed=40)
    assert payloads(items) == sent[40:]


async def test_copies_of_a_retried_write_are_dropped_and_holes_marked(redis_url: str, prefix: str) -> None:
    """By each producer's numbers: a second copy of an entry (a retried write) is skipped, a hole is a gap."""
    async with RedisBus(redis_url, prefix=prefix) as bus:
        sub = await bus.subscribe("room:1")
        client = aioredis.Redis.from_url(redis_url)
        for number in (1, 2, 1, 2, 3, 6):
            await client.xadd(f"{prefix}bus:room:1", {"p": "other", "n": number, "d": f"m{number}"})
        await client.aclose()
        items = await take(sub, 5)
        assert payloads(items) == [b"m1", b"m2", b"m3", b"m6"]
        assert items[3] == Gap(GapReason.TRIMMED, missed=2)


async def test_close_ends_subscriptions_and_stops_every_task(new_bus: BusFactory) -> None:
    """Closing the bus ends every subscription's iteration and leaves no task of the bus running."""
    before = asyncio.all_tasks()
    bus = await new_bus()
    sub = await bus.subscribe("room:1")
    await bus.publish("room:1", b"x")
    await take(sub, 1)
    waiting = asyncio.create_task(take(sub, 1))
    await asyncio.sleep(0)
    await bus.close()
    assert await asyncio.wait_for(waiting, WAIT_S) == []
    assert asyncio.all_tasks() - before == set()
    with pytest.raises(BusClosed):
        bus.publish("room:1", b"y")
