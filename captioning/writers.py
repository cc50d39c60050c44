"""Caption file writers, one class per format, chosen by name with ``get_writer``.

A cue may carry a ``speaker`` (a name): WebVTT writes it as a voice span (``<v Name>``); SRT and text
start a line with ``Name:`` when the speaker changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Protocol


class Cue(Protocol):
    start_s: float
    end_s: float
    text: str


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _clean(text: str) -> str:
    # A blank line ends a cue in both formats; "-->" would be read as a timing line.
    return " ".join(text.split()).replace("-->", "->")


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _speaker(cue: Cue) -> str | None:
    name = getattr(cue, "speaker", None)
    return _clean(name) if name else None


def _labelled(cues: Iterable[Cue]) -> Iterable[tuple[Cue, str]]:
    """Each cue's text, starting with "Name: " where the speaker changes."""
    last: str | None = None
    for cue in cues:
        speaker = _speaker(cue)
        text = _clean(cue.text)
        yield cue, (f"{speaker}: {text}" if speaker and speaker != last else text)
        last = speaker


class WriteVTT:
    extension: ClassVar[str] = "vtt"
    media_type: ClassVar[str] = "text/vtt"

    def write(self, cues: Iterable[Cue]) -> str:
        lines = ["WEBVTT", ""]
        for cue in cues:
            lines.append(f"{_timestamp(cue.start_s, '.')} --> {_timestamp(cue.end_s, '.')}")
            speaker = _speaker(cue)
            text = _vtt_escape(_clean(cue.text))
            lines.append(f"<v {_vtt_escape(speaker)}>{text}" if speaker else text)
            lines.append("")
        return "\n".join(lines)


class WriteSRT:
    extension: ClassVar[str] = "srt"
    media_type: ClassVar[str] = "application/x-subrip"

    def write(self, cues: Iterable[Cue]) -> str:
        lines: list[str] = []
        for index, (cue, text) in enumerate(_labelled(cues), 1):
            lines += [str(index), f"{_timestamp(cue.start_s, ',')} --> {_timestamp(cue.end_s, ',')}", text, ""]
        return "\n".join(lines)


class WriteTXT:
    extension: ClassVar[str] = "txt"
    media_type: ClassVar[str] = "text/plain"

    def write(self, cues: Iterable[Cue]) -> str:
        return "\n".join(text for _, text in _labelled(cues)) + "\n"


WRITERS: dict[str, type[WriteVTT] | type[WriteSRT] | type[WriteTXT]] = {
    "vtt": WriteVTT,
    "srt": WriteSRT,
    "txt": WriteTXT,
}


def get_writer(name: str) -> WriteVTT | WriteSRT | WriteTXT:
    """The writer for a format name (vtt, srt, txt).

    Raises:
        ValueError: unknown format.
    """
    try:
        return WRITERS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown caption format {name!r}; choose one of {', '.join(WRITERS)}") from None
