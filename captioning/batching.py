"""Steps of several caption streams in one engine call.

On a CPU, Whisper's decoder spends most of a step's time on per-token overhead that a batch shares: with
tiny.en and 10 s of encoder input on 2 cores, one window took 350 ms, six windows in one batch 650 ms
(110 ms each). ``BatchingEngine`` wraps an engine so that ``transcribe`` calls made at the same time from
several worker threads (one per stream step) run together: the first caller runs whatever is queued as one
batch while later callers queue; when it is done, the next waiting caller runs the next batch. Alone, a call
runs at once, so batching adds no delay when the machine is idle, and under load the batches grow instead of
the queue.

Phases: under load, the streams of one batch finish together and come back together, but a stream that ran
alone stays out of step with the others (six streams run as batches of 1 and 5 in turn). So right after a
batch of several windows, the runner that takes the next batch waits up to ``linger_s`` for those streams to
come back, as long as fewer calls wait than streams are ``expected`` (the scheduler counts the streams that
called the engine in the last seconds: a silent speaker is not waited for). After a batch of one, or on an
idle engine, no call waits. (Waiting after any batch that others waited for also joined two streams that
otherwise take turns, but in the one bench run of it 4 streams were not sustained, against 6 without it.)

Quality under load: in a batch of more than one window every window is decoded greedily (beam 1), whatever
beam it asked for; alone, a window gets its beam. ``greedy_here`` tells a caller which it got.

Engines with a ``transcribe_batch`` method (faster-whisper) get the calls together; others get them one by
one, in order.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np

from captioning.engine import Engine, Segment, TranscribeOptions

Call = tuple[np.ndarray, TranscribeOptions]


@runtime_checkable
class BatchEngine(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]: ...

    def transcribe_batch(self, calls: list[Call]) -> list[list[Segment]]:
        """The segments of each call, in order; calls that cannot share a pass run alone."""
        ...


@dataclass
class _Pending:
    call: Call
    done: bool = False
    result: list[Segment] = field(default_factory=list)
    error: BaseException | None = None
    greedy: bool = False  # decoded greedily, sharing a batch


class BatchingEngine:
    """An engine whose concurrent ``transcribe`` calls run in batches of at most ``max_batch``, ``runners``
    batches at a time. Thread-safe; ``transcribe`` blocks its caller until its own result is ready."""

    def __init__(
        self,
        engine: Engine,
        max_batch: int = 8,
        runners: int = 1,
        expected: Callable[[], int] | None = None,
        linger_s: float = 0.1,
    ) -> None:
        if max_batch < 1 or runners < 1:
            raise ValueError("max_batch and runners must be at least 1")
        self.engine = engine
        self.name = engine.name
        self.max_batch = max_batch
        self.runners = runners
        self.expected = expected or (lambda: 1)
        self.linger_s = linger_s
        self._last_end = float("-inf")  # when a batch last finished (monotonic)
        self._last_size = 0  # and how many windows it had
        self._queue: deque[_Pending] = deque()
        self._running = 0
        self._changed = threading.Condition()
        self._local = threading.local()
        self.batches = 0  # engine calls made
        self.batched_calls = 0  # transcribe calls served by them

    def greedy_here(self) -> bool:
        """Whether this thread's last call shared a batch and so was decoded greedily."""
        return getattr(self._local, "greedy", False)

    def called_here(self) -> bool:
        """Whether this thread made a call since ``forget_here``."""
        return getattr(self._local, "called", False)

    def forget_here(self) -> None:
        """Clear ``greedy_here`` and ``called_here`` for this thread (before work that may make no call)."""
        self._local.greedy = self._local.called = False

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        mine = _Pending((audio, options))
        with self._changed:
            self._queue.append(mine)
            self._changed.notify_all()  # a lingering runner counts it
        while True:
            with self._changed:
                if not self._claim(mine):
                    break
                # A runner is free: run the oldest calls, this one among them unless the queue holds more
                # than a batch before it (then it loops, to wait for or run a later batch).
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                self._running += 1
            try:
                self._run(batch)
            finally:
                with self._changed:
                    self._running -= 1
                    self._last_end, self._last_size = time.monotonic(), len(batch)
                    self.batches += 1
                    self.batched_calls += len(batch)
                    self._changed.notify_all()
        self._local.greedy, self._local.called = mine.greedy, True
        return self._outcome(mine)

    def _claim(self, mine: _Pending) -> bool:
        """(Holding the lock.) Wait until this call is done (False) or a runner is free for the queue (True)."""
        while True:
            # (An empty queue with this call not done: it is in a running batch.)
            while not mine.done and (self._running >= self.runners or not self._queue):
                self._changed.wait()
            if mine.done:
                return False
            self._linger()
            if not mine.done and self._running < self.runners and self._queue:
                return True

    def _linger(self) -> None:
        """(Holding the lock.) Right after a batch of several, wait a little for the expected calls to come back."""
        if self._last_size < 2:
            return
        deadline = self._last_end + self.linger_s
        wanted = min(self.max_batch, max(1, self.expected()))
        while len(self._queue) < wanted and (left := deadline - time.monotonic()) > 0:
            self._changed.wait(left)

    def _run(self, batch: list[_Pending]) -> None:
        calls = [p.call for p in batch]
        if len(batch) > 1:
            calls = [(audio, replace(options, beam_size=1)) for audio, options in calls]
            for pending in batch:
                pending.greedy = True
        try:
            if len(batch) > 1 and isinstance(self.engine, BatchEngine):
                results = self.engine.transcribe_batch(calls)
            else:
                results = [self.engine.transcribe(*call) for call in calls]
        except BaseException as error:  # every caller of the batch gets the error, none waits forever
            for pending in batch:
                pending.error, pending.done = error, True
            return
        for pending, result in zip(batch, results, strict=True):
            pending.result, pending.done = result, True

    @staticmethod
    def _outcome(pending: _Pending) -> list[Segment]:
        if pending.error is not None:
            raise pending.error
        return pending.result
