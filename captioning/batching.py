"""Steps of several caption streams in one engine call.

On a CPU, Whisper's decoder spends most of a step's time on per-token overhead that a batch shares: with
tiny.en and 10 s of encoder input on 2 cores, one window took 350 ms, six windows in one batch 650 ms
(110 ms each). ``BatchingEngine`` wraps an engine so that ``transcribe`` calls made at the same time from
several worker threads (one per stream step) run together: the first caller runs whatever is queued as one
batch while later callers queue; when it is done, the next waiting caller runs the next batch. Alone, a call
runs at once, so batching adds no delay when the machine is idle, and under load the batches grow instead of
the queue.

Engines with a ``transcribe_batch`` method (faster-whisper) get the calls together; others get them one by
one, in order.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
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


class BatchingEngine:
    """An engine whose concurrent ``transcribe`` calls run in batches of at most ``max_batch``, ``runners``
    batches at a time. Thread-safe; ``transcribe`` blocks its caller until its own result is ready."""

    def __init__(self, engine: Engine, max_batch: int = 8, runners: int = 1) -> None:
        if max_batch < 1 or runners < 1:
            raise ValueError("max_batch and runners must be at least 1")
        self.engine = engine
        self.name = engine.name
        self.max_batch = max_batch
        self.runners = runners
        self._queue: deque[_Pending] = deque()
        self._running = 0
        self._changed = threading.Condition()
        self.batches = 0  # engine calls made
        self.batched_calls = 0  # transcribe calls served by them

    @property
    def busy(self) -> bool:
        """Whether a batch is running or calls are waiting: a step now shares the engine with others."""
        with self._changed:
            return bool(self._running or self._queue)

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        mine = _Pending((audio, options))
        with self._changed:
            self._queue.append(mine)
        while True:
            with self._changed:
                # (An empty queue with this call not done: it is in a running batch.)
                while not mine.done and (self._running >= self.runners or not self._queue):
                    self._changed.wait()
                if mine.done:
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
                    self.batches += 1
                    self.batched_calls += len(batch)
                    self._changed.notify_all()
        return self._outcome(mine)

    def _run(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) > 1 and isinstance(self.engine, BatchEngine):
                results = self.engine.transcribe_batch([p.call for p in batch])
            else:
                results = [self.engine.transcribe(*p.call) for p in batch]
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
