"""Fakes at seams, and only there. Each faked seam also has a test against the real thing."""

from __future__ import annotations

import itertools

from realtime.log import Event


class MemoryIds:
    """Stands in for the database at the room's persistence seam: gives new chat messages, questions
    and polls their ids, as the real store (``server.rooms``) does with its inserts."""

    def __init__(self) -> None:
        # One sequence per table, as in the database.
        self._chat, self._questions, self._polls = itertools.count(1), itertools.count(1), itertools.count(1)

    def commit(self, events: list[Event]) -> list[Event]:
        for event in events:
            if event.kind == "chat.posted" and not event.data["id"]:
                event.data["id"] = next(self._chat)
            elif event.kind == "question.asked" and not event.data["question"]["id"]:
                event.data["question"]["id"] = next(self._questions)
            elif event.kind == "poll.changed" and not event.data["poll"]["id"]:
                event.data["poll"]["id"] = next(self._polls)
        return events


class ScriptedEngine:
    """Stands in for Whisper at the engine seam: returns scripted hypotheses, one per call, and
    records the prompts and options it was given. The real engines are tested on real speech separately.

    Args:
        hypotheses: (start_s, end_s, text) words per call; or, per task (``transcribe``, ``translate``),
            such lists, for two processors sharing the engine.
        language: the language the segments report, as a multilingual model's detection does.
    """

    name = "scripted"

    def __init__(
        self,
        hypotheses: list[list[tuple[float, float, str]]] | dict[str, list[list[tuple[float, float, str]]]],
        no_speech_prob: float = 0.0,
        avg_logprob: float = -0.2,
        language: str | None = None,
        language_probability: float = 1.0,
    ) -> None:
        self.hypotheses = (
            {task: list(h) for task, h in hypotheses.items()} if isinstance(hypotheses, dict) else list(hypotheses)
        )
        self.prompts: list[str] = []
        self.options: list = []
        self.calls = 0
        self.no_speech_prob = no_speech_prob
        self.avg_logprob = avg_logprob
        self.language = language
        self.language_probability = language_probability

    def transcribe(self, audio, options):  # noqa: ANN001, ANN201
        from captioning.engine import Segment, Word

        self.calls += 1
        self.prompts.append(options.prompt)
        self.options.append(options)
        scripts = self.hypotheses[options.task] if isinstance(self.hypotheses, dict) else self.hypotheses
        script = scripts.pop(0) if scripts else []
        words = tuple(Word(*word) for word in script)  # (start, end, text[, probability])
        if not words:
            return []
        return [
            Segment(
                words[0].start_s,
                words[-1].end_s,
                "".join(w.text for w in words),
                words,
                self.no_speech_prob,
                self.avg_logprob,
                options.language or self.language,
                1.0 if options.language else self.language_probability,
            )
        ]
