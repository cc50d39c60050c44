"""LocalAgreement-2: commit the words on which two consecutive hypotheses agree.

Each streaming step re-transcribes the uncommitted audio. A word is final once the newest
hypothesis and the one before it both say it at the same place (as in Macháček et al.,
"Turning Whisper into Real-Time Transcription System", 2023). Words are compared case- and
punctuation-insensitively; their times are the stream's own clock.
"""

from __future__ import annotations

import re

from captioning.engine import Word

# A word that starts this much before the last committed word's end is taken as a repeat of it.
OVERLAP_TOLERANCE_S = 0.1
# Whisper often repeats the end of its prompt at the start of a window; up to this many words are checked.
MAX_OVERLAP_WORDS = 5

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
        """Take a new hypothesis (absolute times), without what is already committed."""
        fresh = [w for w in words if w.start_s >= self.committed_end_s - OVERLAP_TOLERANCE_S and normalize(w.text)]
        if self.committed and fresh:
            for n in range(min(MAX_OVERLAP_WORDS, len(fresh), len(self.committed)), 0, -1):
                tail = [normalize(w.text) for w in self.committed[-n:]]
                head = [normalize(w.text) for w in fresh[:n]]
                if tail == head:
                    fresh = fresh[n:]
                    break
        self._current = fresh

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
