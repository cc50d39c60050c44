"""The batcher: transcribe calls made at once from several threads run together; alone, a call runs at once."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from captioning.batching import BatchingEngine
from captioning.engine import Segment, TranscribeOptions, Word


class Recorder:
    """Answers each window with its first sample's value; notes the batches it was given."""

    name = "recorder"

    def __init__(self, seconds: float = 0.2, fail_on: float | None = None) -> None:
        self.seconds = seconds
        self.fail_on = fail_on
        self.batches: list[list[float]] = []
        self.beams: list[int] = []

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        return self.transcribe_batch([(audio, options)])[0]

    def transcribe_batch(self, calls: list[tuple[np.ndarray, TranscribeOptions]]) -> list[list[Segment]]:
        values = [float(audio[0]) for audio, _ in calls]
        self.batches.append(values)
        self.beams += [options.beam_size for _, options in calls]
        time.sleep(self.seconds)
        if self.fail_on in values:
            raise RuntimeError("engine failed")
        return [[Segment(0.0, 1.0, str(v), (Word(0.0, 1.0, str(v)),))] for v in values]


def _call_from_threads(
    engine: BatchingEngine, values: list[float], greedy: dict[float, bool] | None = None
) -> dict[float, object]:
    """Call from one thread per value, in order; each caller's ``greedy_here`` goes into ``greedy``."""
    results: dict[float, object] = {}
    greedy = {} if greedy is None else greedy

    def call(value: float) -> None:
        try:
            audio = np.full(10, value, np.float32)
            results[value] = engine.transcribe(audio, TranscribeOptions(beam_size=5))[0].text
            greedy[value] = engine.greedy_here()
        except RuntimeError as error:
            results[value] = error

    threads = [threading.Thread(target=call, args=(v,)) for v in values]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # in this order
    for thread in threads:
        thread.join(timeout=10)
    return results


def test_calls_made_while_the_engine_is_busy_run_together_and_each_gets_its_own_result() -> None:
    inner = Recorder()
    engine = BatchingEngine(inner, max_batch=3)
    greedy: dict[float, bool] = {}
    results = _call_from_threads(engine, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], greedy)
    assert results == {v: str(v) for v in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}
    # Alone, a call keeps its beam; in a batch, every window is decoded greedily.
    assert inner.beams == [5, 1, 1, 1, 1, 1]
    assert greedy == {1.0: False, **{v: True for v in [2.0, 3.0, 4.0, 5.0, 6.0]}}
    # The first ran alone at once; the next five queued behind it and went in order, at most three at a time.
    assert inner.batches == [[1.0], [2.0, 3.0, 4.0], [5.0, 6.0]]
    assert (engine.batches, engine.batched_calls) == (3, 6)


def test_an_engine_error_reaches_every_caller_of_its_batch_and_no_one_else() -> None:
    inner = Recorder(fail_on=3.0)
    engine = BatchingEngine(inner, max_batch=2)
    results = _call_from_threads(engine, [1.0, 2.0, 3.0, 4.0])
    assert inner.batches == [[1.0], [2.0, 3.0], [4.0]]
    assert results[1.0] == "1.0" and results[4.0] == "4.0"
    assert all(isinstance(results[v], RuntimeError) for v in (2.0, 3.0))
    assert engine.batches == 3 and engine.batched_calls == 4  # nothing left waiting


def test_an_engine_without_batches_gets_the_calls_one_by_one_in_order() -> None:
    class OneByOne:
        name = "one"

        def __init__(self) -> None:
            self.seen: list[float] = []

        def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
            self.seen.append(float(audio[0]))
            time.sleep(0.1)
            return [Segment(0.0, 1.0, str(audio[0]))]

    inner = OneByOne()
    results = _call_from_threads(BatchingEngine(inner, max_batch=8), [1.0, 2.0, 3.0])
    assert inner.seen == [1.0, 2.0, 3.0] and results == {1.0: "1.0", 2.0: "2.0", 3.0: "3.0"}


def test_two_runners_run_two_batches_at_once() -> None:
    inner = Recorder(seconds=0.3)
    engine = BatchingEngine(inner, max_batch=8, runners=2)
    began = time.monotonic()
    results = _call_from_threads(engine, [1.0, 2.0, 3.0])
    assert len(results) == 3 and inner.batches[:2] == [[1.0], [2.0]]
    assert time.monotonic() - began < 0.75  # [1], [2] at once, then [3]: two rounds, not three


def test_right_after_a_batch_of_several_a_runner_waits_a_little_for_the_streams_expected() -> None:
    """Three streams calling: the call that finds the engine just freed by a batch of several waits (up to
    linger_s) for the others coming back, instead of running alone and keeping the streams out of step; after
    an idle engine or a batch of one, no wait."""
    inner = Recorder(seconds=0.2)
    engine = BatchingEngine(inner, max_batch=8, expected=lambda: 3, linger_s=0.3)
    returned: dict[float, float] = {}
    began = time.monotonic()

    def call(value: float, after_s: float) -> None:
        time.sleep(after_s)
        engine.transcribe(np.full(10, value, np.float32), TranscribeOptions())
        returned[value] = time.monotonic() - began

    arrivals = [(1.0, 0.0), (2.0, 0.05), (3.0, 0.06), (4.0, 0.3), (5.0, 0.5), (6.0, 0.55), (7.0, 1.6)]
    threads = [threading.Thread(target=call, args=a) for a in arrivals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # 1 alone at once (idle engine); 2 and 3, queued behind it, right after it without waiting (it was alone);
    # 4, queued during [2, 3], waited when they were done (0.4 s) for 5 and 6 instead of running alone;
    # 7 came to an idle engine: at once, although three streams are expected.
    assert inner.batches == [[1.0], [2.0, 3.0], [4.0, 5.0, 6.0], [7.0]]
    assert returned[7.0] - 1.6 < 0.2 + 0.15


def test_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BatchingEngine(Recorder(), max_batch=0)
