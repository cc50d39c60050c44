"""LocalAgreement-2: commit the words on which two consecutive hypotheses agree.

Each streaming step re-transcribes the uncommitted audio. A word is final once the newest
hypothesis and the one before it both say it at the same place (as in Macháček et al.,
"Turning Whisper into Real-Time Transcription System", 2023). Words are compared case- and
punctuation-insensitively; their times are the stream's own clock.
"""

from __future__ import annotations

import re

from captioning.engine import Word

# A new word that ends this much before the last committed word's end is taken as already committed.
# (Whisper's word start times jitter by a second between hypotheses; end times are steadier, and the
# words that survive this filter but were committed are removed by matching the committed tail.)
OVERLAP_TOLERANCE_S = 0.3
# Whisper often repeats the end of its prompt at the start of a window; up to this many words are checked.
MAX_OVERLAP_WORDS = 5
# The committed tail found again in a hypothesis must end about where it ended when committed; a match
# further away is the same phrase said again ("can do for you ... can do for your country"), not it.
TAIL_MATCH_TOLERANCE_S = 1.5

_NON_WORD = re.compile(r"[^\w']+")


def normalize(text: str) -> str:
    return _NON_WORD.sub("", text.lower())


class AgreementBuffer:
    """The committed words of one stream, and the uncommitted tail of the last hypothesis."""

    def __init__(self) -> None:
        self.committed: list[Word] = []
        self.pending: list[Word] = []  # the previous hypothesis, after what was committed
        self._current: list[Word] = []

    @property
    def committed_end_s(self) -> float:
        return self.committed[-1].end_s if self.committed else 0.0

    def insert(self, words: list[Word]) -> None:
        """Take a new hypothesis (absolute times), without what is already committed.

        The committed text is found in the hypothesis by its last words (the occurrence nearest the
        committed end in time) and everything up to it is dropped; only when the hypothesis does not
        contain them does a time filter decide. Whisper's word times jitter, its words much less.
        """
        words = [w for w in words if normalize(w.text)]
        cut = self._after_committed_tail(words)
        if cut is None:
            cut = self._at_pending_head(words)
        if cut is not None:
            self._current = words[cut:]
            return
        end = self.committed_end_s
        fresh = [w for w in words if w.end_s > end - OVERLAP_TOLERANCE_S]
        for n in range(min(MAX_OVERLAP_WORDS, len(fresh), len(self.committed)), 0, -1):
            if [normalize(w.text) for w in self.committed[-n:]] == [normalize(w.text) for w in fresh[:n]]:
                fresh = fresh[n:]  # the window starts by repeating the end of the committed text
                break
        self._current = fresh

    def _at_pending_head(self, words: list[Word]) -> int | None:
        """Where the previous hypothesis's pending words start again (their first two, in order)."""
        if len(self.pending) < 2:
            return None
        head = [normalize(w.text) for w in self.pending[:2]]
        keys = [normalize(w.text) for w in words]
        starts = [i for i in range(len(keys) - 1) if keys[i : i + 2] == head]
        if not starts:
            return None
        # Phrases recur ("what your country can do ... what you can do"): take the nearest in time.
        return min(starts, key=lambda i: abs(words[i].start_s - self.pending[0].start_s))

    def _after_committed_tail(self, words: list[Word]) -> int | None:
        if not self.committed:
            return 0
        keys = [normalize(w.text) for w in words]
        tail = [normalize(w.text) for w in self.committed[-MAX_OVERLAP_WORDS:]]
        shortest = 1 if len(self.committed) == 1 else 2  # one common word ("the") is no evidence
        for n in range(len(tail), shortest - 1, -1):
            suffix = tail[-n:]
            starts = [
                i
                for i in range(len(keys) - n + 1)
                if keys[i : i + n] == suffix
                and abs(words[i + n - 1].end_s - self.committed_end_s) <= TAIL_MATCH_TOLERANCE_S
            ]
            if starts:
                best = min(starts, key=lambda i: abs(words[i + n - 1].end_s - self.committed_end_s))
                return best + n
        return None

    def flush(self) -> list[Word]:
        """Commit the longest common prefix of the previous and the new hypothesis; return it."""
        agreed: list[Word] = []
        for before, now in zip(self.pending, self._current, strict=False):
            if normalize(before.text) != normalize(now.text):
                break
            agreed.append(now)
        self.committed.extend(agreed)
        self.pending = self._current[len(agreed) :]
        self._current = []
        return agreed

    def commit_all(self) -> list[Word]:
        """Commit whatever is pending (at a pause or at the end of the stream)."""
        words, self.pending = self.pending, []
        self.committed.extend(words)
        return words
