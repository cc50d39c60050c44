"""LocalAgreement-2: commit the words on which two consecutive hypotheses agree.

Each streaming step re-transcribes the uncommitted audio. A word is final once the newest
hypothesis and the one before it both say it at the same place (as in Macháček et al.,
"Turning Whisper into Real-Time Transcription System", 2023). Words are compared case- and
punctuation-insensitively; their times are the stream's own clock.
"""

from __future__ import annotations

import re

from captioning.engine import Word

# A new word that ends this much before the last committed word's end lies in audio already committed: a
# leftover of it (Whisper's word start times jitter by a second between hypotheses; end times are steadier).
OVERLAP_TOLERANCE_S = 0.3
# The hypothesis is aligned with this many of the last committed words to find where the new words start.
ALIGN_WORDS = 12
# A committed word found again this close in time (ends within) is the same word heard again: full evidence.
SAME_WORD_S = 1.0
# Whisper also repeats its prompt at the start of a window ("And so, my fellow Americans." once more), with the
# words squeezed into the window's first seconds: a committed word found again this close counts half.
ECHO_S = 3.0
# A hypothesis whose new part still starts with this many of the last committed words, in order, echoes them,
# however far away in time Whisper placed the echo.
ECHO_RUN = 3

# Phrases this long or shorter are checked for loops; five words or more said twice in a row are one loop.
LOOP_WORDS = 12

_NON_WORD = re.compile(r"[^\w']+")


def normalize(text: str) -> str:
    return _NON_WORD.sub("", text.lower())


def drop_repetitions(words: list[Word], max_repeats: int, fixed: int = 0) -> list[Word]:
    """Cut Whisper's loops out of a hypothesis; the first ``fixed`` words are context (committed text): they stay.

    - Phrases of 1-4 words repeated more than ``max_repeats`` times in a row are cut down to ``max_repeats``.
    - Longer phrases (up to ``LOOP_WORDS``) said twice in a row are cut down to once ("And so, my fellow
      Americans." four times over).
    - A phrase of two or more words said again in less than half the time it took (Whisper piles an invented
      copy onto one instant: "go forward 10 meters go@40.46 forward@40.46 10@40.46 meters@40.78") loses that
      copy.
    """
    keys = [normalize(w.text) for w in words]
    for size in range(1, LOOP_WORDS + 1):
        allowed = max_repeats if size <= 4 else 1
        i = 0
        while i + size <= len(keys):
            phrase = keys[i : i + size]
            j = i + size
            repeats = 1
            while keys[j : j + size] == phrase:
                repeats += 1
                j += size
            keep = i + size * allowed
            if repeats > allowed and keep >= fixed:
                del words[keep:j]
                del keys[keep:j]
            elif repeats > 1 and size > 1:
                first, second = _span(words[i : i + size]), _span(words[i + size : i + 2 * size])
                squeezed = i + size if second < first / 2 else i if first < second / 2 else None
                if squeezed is not None and squeezed >= fixed:
                    del words[squeezed : squeezed + size]
                    del keys[squeezed : squeezed + size]
                    continue  # the same place again: the copy after may repeat too
            i += 1
    return words


def _span(words: list[Word]) -> float:
    return words[-1].end_s - words[0].start_s


class AgreementBuffer:
    """The committed words of one stream, and the uncommitted tail of the last hypothesis."""

    def __init__(self, max_repeats: int = 3) -> None:
        self.max_repeats = max_repeats  # see drop_repetitions
        self.committed: list[Word] = []
        self.pending: list[Word] = []  # the previous hypothesis, after what was committed
        self._current: list[Word] = []

    @property
    def committed_end_s(self) -> float:
        return self.committed[-1].end_s if self.committed else 0.0

    def insert(self, words: list[Word]) -> None:
        """Take a new hypothesis (absolute times), without what is already committed.

        The window's audio starts before the committed end, so a hypothesis begins by saying some committed
        words again, or Whisper's echo of its prompt. Its start is aligned with the committed tail
        (``committed_prefix``) and cut there; then the words that still lie in committed audio are dropped.
        """
        words = [w for w in words if normalize(w.text)]
        fresh = words[self.committed_prefix(words) :]
        # A loop that began in the committed text ("And so" committed, "my fellow Americans. And so my fellow
        # Americans." new) is cut where it repeats.
        tail = self.committed[-LOOP_WORDS:]
        fresh = drop_repetitions(tail + fresh, self.max_repeats, fixed=len(tail))[len(tail) :]
        while fresh and self._drop_leftover(fresh):
            pass
        self._current = fresh

    def _drop_leftover(self, fresh: list[Word]) -> bool:
        """Drop what starts ``fresh`` if it is left over from the committed words; whether anything was.

        - The committed text's end again, word for word: anywhere in time for ``ECHO_RUN`` words or more
          (Whisper's echo of its prompt), ending within ``SAME_WORD_S`` of the committed end for fewer (an echo
          and the same words heard in the audio may both be there).
        - Unless it starts what the last hypothesis had pending (Whisper gives a phrase said twice the times of
          its first saying: "can do for your country"), a committed word again where it was said (its end
          within ``OVERLAP_TOLERANCE_S``), or any word placed in committed audio.
        """
        end = self.committed_end_s
        keys = [normalize(w.text) for w in fresh[:ALIGN_WORDS]]
        for n in range(min(len(keys), len(self.committed)), 0, -1):
            if keys[:n] == [normalize(w.text) for w in self.committed[-n:]] and (
                n >= ECHO_RUN or abs(fresh[n - 1].end_s - end) <= SAME_WORD_S
            ):
                del fresh[:n]
                return True
        if len(self.pending) >= 2 and keys[:2] == [normalize(w.text) for w in self.pending[:2]]:
            return False
        if any(
            normalize(word.text) == keys[0] and abs(word.end_s - fresh[0].end_s) <= OVERLAP_TOLERANCE_S
            for word in self.committed[-ALIGN_WORDS:]
        ):
            del fresh[0]  # a committed word heard again where it was said
            return True
        if fresh[0].end_s > end - OVERLAP_TOLERANCE_S:
            return False
        del fresh[0]
        return True

    def committed_prefix(self, words: list[Word]) -> int:
        """How many of a hypothesis's first words say the committed text again.

        An alignment (by dynamic programming) of the hypothesis's first k words with a tail of the last
        committed words, whichever k scores best: a word found again scores 1 when it ends within
        ``SAME_WORD_S`` of where it was committed, 0.5 within ``ECHO_S`` (an echo), and no more than that
        (the same phrase said again later: "can do for you ... can do for your country"); each hypothesis word
        left over costs 1, unless it lies in committed audio; each committed word of the tail skipped costs 1.
        Nothing is cut for less than one word's worth of evidence. The first words of the tail may be left out
        freely: they are where the window was trimmed.
        """
        tail = self.committed[-ALIGN_WORDS:]
        if not tail or not words:
            return 0
        end = self.committed_end_s
        tail_keys = [normalize(w.text) for w in tail]
        n = len(tail)
        # score[j]: the best alignment of the first k hypothesis words with tail[i:j], for any i. Before any word
        # (k = 0) it is 0 for every j: a tail may start at any committed word.
        score = [0.0] * (n + 1)
        best, cut = 0.0, 0
        for k, word in enumerate(words, start=1):
            key = normalize(word.text)
            left_over = 0.0 if word.end_s <= end - OVERLAP_TOLERANCE_S else -1.0
            row = [0.0] * (n + 1)
            row[0] = score[0] + left_over
            for j in range(1, n + 1):
                row[j] = max(score[j] + left_over, row[j - 1] - 1.0)
                if tail_keys[j - 1] == key:
                    distance = abs(word.end_s - tail[j - 1].end_s)
                    found = 1.0 if distance <= SAME_WORD_S else 0.5 if distance <= ECHO_S else None
                    if found is not None:
                        row[j] = max(row[j], score[j - 1] + found)
            score = row
            if score[n] >= best - 1e-9:
                best, cut = score[n], k
        return cut if best >= 1.0 else 0

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
