"""The bus that links processes: ordered messages per topic, behind one interface.

``MemoryBus`` serves one process (the default); ``RedisBus`` links several through Redis Streams
(``redis.asyncio``): one stream per topic, trimmed with ``XADD MAXLEN ~``, and one reader task per
bus that blocks in ``XREAD`` over every subscribed stream, remembers the last id it saw in each and,
after a lost connection, reconnects with backoff and resumes from there. Redis pub/sub (and the
``broadcaster`` package on top of it) is at-most-once and was seen going silent after a restart;
a stream can be read again from an id.

What a subscriber gets, in order: ``Message(id, payload)`` items and, where messages may be
missing, a ``Gap`` marker (its queue overflowed, the stream was trimmed past it, Redis lost its
data, or it subscribed while Redis was unreachable). A ``Gap`` means: resync from the source of
truth. A slow subscriber loses its own oldest messages; it never holds up the reader or the others.

Publishing never waits for Redis: ``publish()`` puts the message in an in-memory outbox and returns
a future of its stream id; one task writes the outbox to Redis in order, pipelined, and while
Redis is down the messages wait there (``pending``, ``flushed()``) until it returns. Each entry
carries its producer and a number that grows by one per topic: readers drop a second copy (a write
retried after its reply was lost) and turn a jump into a gap. The outbox lives in memory: surviving
a crash of this process is the job of the database outbox the rooms commit to (``server.rooms.outbox``).

Restarts: a reader notices a new Redis by its ``run_id``. Without persistence the streams come back
empty and their ids mean nothing any more, so the reader marks a ``RESET`` gap and reads each stream
that lost the id it had reached from ``0-0`` (ids of the new stream may even sort below the old
ones); messages published while Redis was down follow, in order, once.

Exceptions::

    BusError
     └── BusClosed      publish or subscribe after close()

This module is longer than most (about 750 lines): the Redis reader, the outbox and the subscription
they feed only make sense together. If it grows, ``RedisBus`` is the piece to move to a module of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, Self

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger("forumlive.bus")

# Messages a subscriber may have waiting before it loses the oldest; at 5 events/s, over 3 minutes.
QUEUE_MESSAGES = 1024
# Messages kept per topic for replay (``subscribe(after=...)``); the same window as the room's event log.
HISTORY_MESSAGES = 10_000
# How long the reader blocks in one XREAD (ms): a keep-alive only, a new subscription wakes it at once.
BLOCK_MS = 5_000
# Entries per stream per XREAD, and messages per pipelined write.
READ_COUNT = 1_000
WRITE_BATCH = 256
# On close, how long pending messages may take to reach Redis before they are given up (s).
CLOSE_FLUSH_S = 2.0
# The wake-up stream of a reader expires when nobody has woken it for this long (s).
WAKE_TTL_S = 600

ZERO_ID = "0-0"
# Errors after which a Redis operation is tried again later: the server is down, restarting, unreachable, or
# refuses for now (loading, read-only replica during a failover).
RETRYABLE = (RedisError, OSError)


class BusError(Exception):
    """Base of the bus's errors."""


class BusClosed(BusError):
    """The bus was closed."""


class GapReason(StrEnum):
    SLOW = "slow"  # this subscriber's queue overflowed: it lost its oldest messages
    TRIMMED = "trimmed"  # the stream no longer holds some messages this subscriber had not read
    RESET = "reset"  # the bus lost its history (Redis restarted without its data, or the stream was deleted)
    UNAVAILABLE = "unavailable"  # subscribed while Redis was unreachable: messages of that time may be missing


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a topic; ``id`` is ``"<ms>-<n>"`` and grows with each message of the topic."""

    id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages may be missing here: resync from the source of truth. ``missed`` counts known losses (0: unknown)."""

    reason: GapReason
    missed: int = 0


class Entry(NamedTuple):
    """A message on its way to a subscription, with its id as a sortable pair and the losses just before it."""

    message: Message
    key: tuple[int, int]
    missed: int = 0


def id_key(message_id: str) -> tuple[int, int]:
    """A message id as a sortable pair.

    Raises:
        ValueError: not an id of the form ``"<int>-<int>"``.
    """
    first, _, second = message_id.partition("-")
    return int(first), int(second or 0)


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnect attempts: doubling from ``first_s`` up to ``max_s``, each scaled by a random
    50-100% so that the processes that lost Redis together do not all come back in the same instant."""

    first_s: float = 0.05
    max_s: float = 5.0

    def delay_s(self, attempt: int) -> float:
        return min(self.max_s, self.first_s * 2 ** min(attempt, 32)) * random.uniform(0.5, 1.0)


class Subscription:
    """Messages of one topic for one consumer: ``async for item in subscription`` yields ``Message`` and ``Gap``.

    The queue is bounded: when it is full the oldest message is dropped and the consumer gets a ``Gap``
    (``SLOW``) in its place. Iteration ends when the subscription or its bus is closed.
    """

    def __init__(self, topic: str, maxsize: int, detach: Callable[[Subscription], None]) -> None:
        self.topic = topic
        self.maxsize = maxsize
        self.closed = False
        self._detach = detach
        self._queue: deque[Message | Gap] = deque()
        self._overflowed = False
        self._dropped = 0  # messages lost to overflow since the consumer last took something
        self._ready = asyncio.Event()
        self._last = (0, 0)  # id of the newest message taken; older ones are copies and are skipped
        self._held: list[Entry] | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message | Gap:
        while True:
            if self._overflowed:
                gap = Gap(GapReason.SLOW, self._dropped)
                self._overflowed, self._dropped = False, 0
                return gap
            if self._queue:
                return self._queue.popleft()
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving; waiting messages are dropped and iteration ends."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._overflowed = False
        self._ready.set()
        self._detach(self)

    def deliver(self, message: Message, key: tuple[int, int], missed: int = 0) -> None:
        """Take a message from the bus without waiting (copies at or before the last one taken are skipped).

        Args:
            key: the message's id as ``id_key`` gives it.
            missed: messages known to be missing just before this one (a ``TRIMMED`` gap goes first).
        """
        if self.closed:
            return
        if self._held is not None:
            self._held.append(Entry(message, key, missed))
            return
        if key <= self._last:
            return
        self._last = key
        if missed:
            self._push(Gap(GapReason.TRIMMED, missed))
        self._push(message)

    def start_after(self, key: tuple[int, int]) -> None:
        """Take only messages after this id from now on."""
        self._last = key

    def mark_gap(self, reason: GapReason, missed: int = 0) -> None:
        if not self.closed:
            self._push(Gap(reason, missed))

    def restart(self) -> None:
        """The stream's ids start again (its history was lost): mark a gap and take whatever comes next."""
        self._last = (0, 0)
        self.mark_gap(GapReason.RESET)

    def _push(self, item: Message | Gap) -> None:
        if len(self._queue) >= self.maxsize:
            oldest = self._queue.popleft()
            self._overflowed = True
            self._dropped += oldest.missed if isinstance(oldest, Gap) else 1
        self._queue.append(item)
        self._ready.set()

    def hold(self) -> None:
        """Keep what the bus delivers aside until ``release`` (while the history before it is fetched)."""
        self._held = []

    def release(self, history: Iterable[Entry], gap: Gap | None = None) -> None:
        """Queue ``gap``, then ``history``, then what was held back (without the copies)."""
        held, self._held = self._held or [], None
        if gap is not None:
            self.mark_gap(gap.reason, gap.missed)
        for entry in itertools.chain(history, held):
            self.deliver(*entry)


class Bus(Protocol):
    """Ordered messages per topic, shared by every process that uses the same bus."""

    @property
    def pending(self) -> int:
        """Messages published but not yet handed to the bus's backing store."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def publish(self, topic: str, payload: bytes) -> asyncio.Future[str]:
        """Queue a message without waiting; the future gives its id once the bus has it."""
        ...

    async def subscribe(self, topic: str, after: str | None = None, maxsize: int = QUEUE_MESSAGES) -> Subscription:
        """Messages published from now on, or after the message ``after`` when given (replay).

        Raises:
            ValueError: ``after`` is not a message id.
        """
        ...

    async def flushed(self) -> None:
        """Wait until nothing is pending."""
        ...


@dataclass(eq=False)
class _MemoryTopic:
    history: deque[Message]
    seq: int = 0
    subs: set[Subscription] = field(default_factory=set)


class MemoryBus:
    """The bus of one process: delivery happens inside ``publish``; ids are ``"1-0"``, ``"2-0"``, ... per topic."""

    def __init__(self, history: int = HISTORY_MESSAGES) -> None:
        self._history = history
        self._topics: dict[str, _MemoryTopic] = {}
        self._closed = False

    pending = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Nothing to start: kept so callers need not know which bus they have."""

    async def close(self) -> None:
        self._closed = True
        for topic in list(self._topics.values()):
            for sub in list(topic.subs):
                sub.close()

    async def flushed(self) -> None:
        """Nothing is ever pending."""

    def _topic(self, topic: str) -> _MemoryTopic:
        found = self._topics.get(topic)
        if found is None:
            found = self._topics[topic] = _MemoryTopic(deque(maxlen=self._history))
        return found

    def publish(self, topic: str, payload: bytes) -> asyncio.Future[str]:
        if self._closed:
            raise BusClosed("the bus is closed")
        state = self._topic(topic)
        state.seq += 1
        message = Message(f"{state.seq}-0", payload)
        state.history.append(message)
        for sub in list(state.subs):
            sub.deliver(message, (state.seq, 0))
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        done.set_result(message.id)
        return done

    async def subscribe(self, topic: str, after: str | None = None, maxsize: int = QUEUE_MESSAGES) -> Subscription:
        if self._closed:
            raise BusClosed("the bus is closed")
        state = self._topic(topic)
        sub = Subscription(topic, maxsize, state.subs.discard)
        if after is None:
            sub.start_after((state.seq, 0))
        else:
            last, gap = id_key(after)[0], None
            if last > state.seq:  # an id this topic never gave: from before a restart of the process
                last, gap = 0, Gap(GapReason.RESET)
            elif state.history and last + 1 < id_key(state.history[0].id)[0]:
                gap = Gap(GapReason.TRIMMED)
            sub.start_after((last, 0))
            sub.release((Entry(m, id_key(m.id)) for m in state.history), gap)
        state.subs.add(sub)
        return sub


@dataclass(eq=False)
class _RedisTopic:
    key: str
    position: str | None = None  # the last id read from the stream; None: not known yet (Redis unreachable)
    subs: set[Subscription] = field(default_factory=set)
    producers: dict[bytes, int] = field(default_factory=dict)  # the newest number seen of each producer
    run_id: str | None = None  # the Redis server the bus knew when the topic was subscribed


@dataclass(eq=False)
class _Outgoing:
    key: str
    payload: bytes
    number: int
    done: asyncio.Future[str]


@dataclass(frozen=True)
class _StreamInfo:
    last: str = ZERO_ID  # the last id the stream ever gave
    first: str | None = None  # the oldest entry still kept
    max_deleted: str = ZERO_ID  # the newest id removed by XDEL (Redis 7; trimming leaves it alone)
    removed: bool = False  # entries were trimmed or deleted (or, before Redis 7, may have been)
    exists: bool = False

    def lost_after(self, key: tuple[int, int]) -> bool:
        """Whether entries after ``key`` may have been removed before they were read.

        Trimming removes the oldest entries, so an id older than the oldest kept may have been followed by
        removed ones (or by the oldest kept itself: then this errs on the safe side).
        """
        if key < id_key(self.max_deleted):
            return True
        return self.removed and self.first is not None and key < id_key(self.first)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream_info(reply: Any) -> _StreamInfo:
    """``XINFO STREAM``'s reply, or the error it gave for a stream that does not exist."""
    if isinstance(reply, Exception):
        return _StreamInfo()
    first = reply.get("first-entry")
    added = reply.get("entries-added")
    return _StreamInfo(
        last=_text(reply["last-generated-id"]),
        first=_text(first[0]) if first else None,
        max_deleted=_text(reply.get("max-deleted-entry-id", ZERO_ID)),
        removed=added is None or int(added) > int(reply["length"]),
        exists=True,
    )


def _entries(raw: Iterable[Any], producers: dict[bytes, int]) -> list[Entry]:
    """Stream entries as messages.

    Each producer numbers its messages per topic 1, 2, 3, ...: a number seen before is a second copy (a write
    retried after its reply was lost) and is skipped; a number further on than the next says how many of that
    producer's messages the stream lost (trimmed before they were read, or gone with a restart).
    """
    out = []
    for raw_id, fields in raw:
        producer, number, payload = fields.get(b"p", b""), int(fields.get(b"n", 0)), fields.get(b"d")
        last = producers.get(producer) if producer else None
        if payload is None or (last is not None and number <= last):
            continue
        if producer:
            producers[producer] = number
        message_id = _text(raw_id)
        missed = number - last - 1 if last is not None else 0
        out.append(Entry(Message(message_id, payload), id_key(message_id), missed))
    return out


class RedisBus:
    """The bus of several processes, over Redis Streams.

    Args:
        url: ``redis://host:port/db``.
        maxlen: messages kept per stream (approximately: ``MAXLEN ~``).
        prefix: prefix of every key the bus writes (topic ``t`` is the stream ``<prefix>bus:t``).
        backoff: delays between attempts while Redis is unreachable.
    """

    def __init__(
        self,
        url: str,
        maxlen: int = HISTORY_MESSAGES,
        prefix: str = "forumlive:",
        backoff: Backoff | None = None,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self.url = url
        self.maxlen = maxlen
        self.prefix = prefix
        self.backoff = backoff or Backoff()
        self.block_ms = block_ms
        self._producer = secrets.token_hex(8).encode()
        self._numbers: dict[str, Iterator[int]] = defaultdict(lambda: itertools.count(1))
        self._wake_key = f"{prefix}wake:{self._producer.decode()}"
        self._wake_position = ZERO_ID
        self._topics: dict[str, _RedisTopic] = {}
        self._outbox: deque[_Outgoing] = deque()
        self._has_work = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._run_id: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = self._closed = False
        # Redis-py's own retries are off: the reader and the writer retry with backoff themselves.
        options: dict[str, Any] = {"socket_connect_timeout": 2.0, "retry": Retry(NoBackoff(), 0)}
        self._client = aioredis.Redis.from_url(url, socket_timeout=5.0, **options)
        self._reader_client = aioredis.Redis.from_url(
            url, socket_timeout=block_ms / 1000 + 5.0, single_connection_client=True, **options
        )

    @property
    def pending(self) -> int:
        return len(self._outbox)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the reader and the writer; they connect (and reconnect) on their own."""
        if self._started:
            return
        self._started = True
        self._spawn(self._read_loop())
        self._spawn(self._write_loop())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bus task %s failed", task.get_coro(), exc_info=task.exception())

    async def close(self, flush_s: float = CLOSE_FLUSH_S) -> None:
        """Give pending messages up to ``flush_s`` to reach Redis, then stop the tasks and close the connections."""
        if self._closed:
            return
        self._closed = True
        if self._outbox:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_s):
                    await self._empty.wait()
        if self._outbox:
            log.warning("bus closed with %d messages not published (Redis unreachable)", len(self._outbox))
        pending = set(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            # A cancel can be lost inside redis-py on Python 3.11 (its asyncio.wait_for around a socket write
            # swallows it when the write finishes in the same instant, CPython gh-86296): the reader then goes
            # on into a blocking XREAD. So cancel again until every task has ended.
            _, pending = await asyncio.wait(pending, timeout=0.1)
        for item in self._outbox:
            item.done.cancel()
        self._outbox.clear()
        self._empty.set()  # nothing will be published any more: flushed() returns
        for topic in list(self._topics.values()):
            for sub in list(topic.subs):
                sub.close()
        with contextlib.suppress(*RETRYABLE, TimeoutError):
            async with asyncio.timeout(0.5):
                await self._client.delete(self._wake_key)
        await self._reader_client.aclose()
        await self._client.aclose()

    # Publishing ---------------------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes) -> asyncio.Future[str]:
        if self._closed:
            raise BusClosed("the bus is closed")
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        key = self._key(topic)
        self._outbox.append(_Outgoing(key, payload, next(self._numbers[key]), done))
        self._empty.clear()
        self._has_work.set()
        return done

    async def flushed(self) -> None:
        await self._empty.wait()

    def _key(self, topic: str) -> str:
        return f"{self.prefix}bus:{topic}"

    async def _write_loop(self) -> None:
        """Write the outbox to Redis in order, a pipelined batch at a time; wait and retry while Redis is down."""
        attempt, down_since = 0, 0.0
        while True:
            if not self._outbox:
                self._empty.set()
                self._has_work.clear()
                await self._has_work.wait()
                continue
            try:
                await self._write_batch()
            except RETRYABLE as exc:
                if attempt == 0:
                    down_since = time.monotonic()
                    log.warning("cannot publish to Redis (%s); %d messages wait in order", exc, len(self._outbox))
                delay = self.backoff.delay_s(attempt)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if attempt:
                log.info("Redis took the waiting messages again after %.1f s", time.monotonic() - down_since)
                attempt = 0

    async def _write_batch(self) -> None:
        """Write the oldest messages of the outbox and take out those Redis took.

        Raises:
            RedisError, OSError: Redis is unreachable or refuses for now (read-only, out of memory, ...); the
                message it refused and those after it stay, in order (copies written anyway are dropped by readers).
        """
        batch = list(itertools.islice(self._outbox, WRITE_BATCH))
        pipe = self._client.pipeline(transaction=False)
        for item in batch:
            fields = {"p": self._producer, "n": item.number, "d": item.payload}
            pipe.xadd(item.key, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        for item, reply in zip(batch, await pipe.execute(raise_on_error=False), strict=True):
            wrong_type = isinstance(reply, ResponseError) and str(reply).startswith("WRONGTYPE")
            if isinstance(reply, Exception) and not wrong_type:
                raise reply
            self._outbox.popleft()
            if item.done.done():
                continue
            if wrong_type:  # the key holds something else: retrying cannot help, so the message is dropped
                log.error("Redis refused a message for %s: %s", item.key, reply)
                item.done.set_exception(BusError(str(reply)))
            else:
                item.done.set_result(_text(reply))

    # Subscribing --------------------------------------------------------------------------------------

    async def subscribe(self, topic: str, after: str | None = None, maxsize: int = QUEUE_MESSAGES) -> Subscription:
        if self._closed:
            raise BusClosed("the bus is closed")
        key = self._key(topic)
        after_key = id_key(after) if after is not None else None
        state = self._topics.get(key)
        if state is None:
            state = self._topics[key] = _RedisTopic(key, run_id=self._run_id)
        sub = Subscription(topic, maxsize, lambda s: self._unsubscribe(key, s))
        state.subs.add(sub)
        if after is None and state.position is not None:
            sub.start_after(id_key(state.position))  # the reader has read up to here: exactly "from now on"
            return sub
        sub.hold()
        try:
            info, entries = await self._fetch(key, after_key)
        except RETRYABLE:
            sub.release([], Gap(GapReason.UNAVAILABLE))
            self._wake()  # the reader finds the stream's position when it can
            return sub
        except BaseException:
            sub.close()
            raise
        if state.position is None and not sub.closed:
            state.position = info.last
            self._wake()
        gap = None
        if after_key is None:
            sub.start_after(id_key(info.last))
        elif after_key > id_key(info.last):  # an id this stream never gave: from before Redis lost its data
            gap = Gap(GapReason.RESET)
        else:
            sub.start_after(after_key)
            if info.lost_after(after_key):
                gap = Gap(GapReason.TRIMMED)
        sub.release(_entries(entries, {}), gap)
        return sub

    async def _fetch(self, key: str, after: tuple[int, int] | None) -> tuple[_StreamInfo, list[Any]]:
        """A stream's info and, for a replay, its entries after ``after`` (all of them if ``after`` is unknown)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.xinfo_stream(key)
        if after is not None:
            pipe.xrange(key, f"({after[0]}-{after[1]}", "+")
        replies = await pipe.execute(raise_on_error=False)
        info = _stream_info(replies[0])
        if after is None:
            return info, []
        if isinstance(replies[1], Exception):
            raise replies[1]
        if after > id_key(info.last):
            return info, await self._client.xrange(key, "-", "+")
        return info, replies[1]

    def _unsubscribe(self, key: str, sub: Subscription) -> None:
        state = self._topics.get(key)
        if state is not None:
            state.subs.discard(sub)
            if not state.subs:
                del self._topics[key]  # the reader drops the stream from its next XREAD

    def _wake(self) -> None:
        """Make the reader start a new XREAD that includes new streams (it may be blocked in the old one)."""
        if not self._closed:
            self._spawn(self._send_wake())

    async def _send_wake(self) -> None:
        with contextlib.suppress(*RETRYABLE):  # the reader then finds the new stream after BLOCK_MS
            pipe = self._client.pipeline(transaction=False)
            pipe.xadd(self._wake_key, {"w": 1}, maxlen=1, approximate=False)
            pipe.expire(self._wake_key, WAKE_TTL_S)
            await pipe.execute()

    # Reading ------------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        """The one reader: XREAD over all subscribed streams from the last ids seen; reconnect with backoff."""
        attempt, down_since = 0, 0.0
        while True:
            try:
                await self._check_server()
                if attempt:
                    log.info("bus reader reconnected to Redis after %.1f s", time.monotonic() - down_since)
                    attempt = 0
                while True:
                    await self._resolve_positions()
                    streams = {t.key: t.position for t in self._topics.values() if t.position is not None}
                    streams[self._wake_key] = self._wake_position
                    reply = await self._reader_client.xread(streams, count=READ_COUNT, block=self.block_ms)  # type: ignore[arg-type]
                    self._dispatch(reply or [])
            except ResponseError:  # e.g. a key of ours holds something else: not cured by reconnecting fast
                log.exception("Redis refused the bus reader's XREAD")
                await asyncio.sleep(self.backoff.max_s)
            except RETRYABLE as exc:
                if attempt == 0:
                    down_since = time.monotonic()
                    log.warning("bus reader lost Redis (%s); reconnecting with backoff", exc)
                delay = self.backoff.delay_s(attempt)
                attempt += 1
                await asyncio.sleep(delay)

    def _dispatch(self, reply: Any) -> None:
        for raw_key, entries in reply.items() if isinstance(reply, dict) else reply:  # RESP3 without legacy shapes
            key = _text(raw_key)
            if key == self._wake_key:
                self._wake_position = _text(entries[-1][0])
                continue
            state = self._topics.get(key)
            if state is None or not entries:
                continue  # unsubscribed while the read was on its way
            state.position = _text(entries[-1][0])
            messages = _entries(entries, state.producers)
            for sub in list(state.subs):
                for entry in messages:
                    sub.deliver(*entry)

    async def _check_server(self) -> None:
        """After (re)connecting: notice a restarted Redis or trimmed streams, and tell the subscribers."""
        run_id = _text((await self._reader_client.info("server"))["run_id"])
        restarted = self._run_id is not None and run_id != self._run_id
        known = [t for t in self._topics.values() if t.position is not None]
        infos = await self._infos([t.key for t in known]) if known else []
        # Nothing changes before every answer is in: a connection lost half-way must find the restart again.
        self._run_id = run_id
        if restarted:
            log.warning("Redis restarted (run id changed): resuming streams that lost their data from the start")
            self._wake_position = ZERO_ID
        for state, info in zip(known, infos, strict=True):
            self._resume(state, info, restarted)

    def _resume(self, state: _RedisTopic, info: _StreamInfo, restarted: bool) -> None:
        """Where to go on reading a stream after a reconnect, and whether its subscribers missed anything."""
        position = id_key(state.position or ZERO_ID)
        kept = info.exists and info.first is not None and id_key(info.first) <= position <= id_key(info.last)
        if position > id_key(info.last) or (restarted and not kept):
            # The ids we knew are gone: every entry now in the stream was written since. Ids of the new
            # stream may even sort below ours (another host's clock), so read it from its beginning.
            state.position = ZERO_ID
            for sub in list(state.subs):
                sub.restart()
        elif info.lost_after(position):
            for sub in list(state.subs):
                sub.mark_gap(GapReason.TRIMMED)
        elif restarted:  # the data survived, but what was written just before the restart may not have
            for sub in list(state.subs):
                sub.mark_gap(GapReason.RESET)

    async def _resolve_positions(self) -> None:
        """Find where to read streams subscribed while Redis was unreachable.

        When Redis restarted since (it was down: the usual reason), every entry it holds was written after the
        subscription, so all are read; so too when this bus had never reached Redis (better some old messages,
        after the gap, than losing new ones). Otherwise reading starts at the stream's end as it is now.
        """
        unknown = [t for t in self._topics.values() if t.position is None]
        if unknown:
            for state, info in zip(unknown, await self._infos([t.key for t in unknown]), strict=True):
                restarted = state.run_id is None or state.run_id != self._run_id
                state.position = ZERO_ID if restarted else info.last

    async def _infos(self, keys: list[str]) -> list[_StreamInfo]:
        pipe = self._reader_client.pipeline(transaction=False)
        for key in keys:
            pipe.xinfo_stream(key)
        return [_stream_info(reply) for reply in await pipe.execute(raise_on_error=False)]
