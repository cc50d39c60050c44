"""Caption file writers, one class per format, chosen by name with ``get_writer``."""

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


class WriteVTT:
    extension: ClassVar[str] = "vtt"
    media_type: ClassVar[str] = "text/vtt"

    def write(self, cues: Iterable[Cue], speaker_of: dict[int, str] | None = None) -> str:
        lines = ["WEBVTT", ""]
        for cue in cues:
            lines.append(f"{_timestamp(cue.start_s, '.')} --> {_timestamp(cue.end_s, '.')}")
            lines.append(_clean(cue.text))
            lines.append("")
        return "\n".join(lines)


class WriteSRT:
    extension: ClassVar[str] = "srt"
    media_type: ClassVar[str] = "application/x-subrip"

    def write(self, cues: Iterable[Cue], speaker_of: dict[int, str] | None = None) -> str:
        lines: list[str] = []
        for index, cue in enumerate(cues, 1):
            lines += [
                str(index),
                f"{_timestamp(cue.start_s, ',')} --> {_timestamp(cue.end_s, ',')}",
                _clean(cue.text),
                "",
            ]
        return "\n".join(lines)


class WriteTXT:
    extension: ClassVar[str] = "txt"
    media_type: ClassVar[str] = "text/plain"

    def write(self, cues: Iterable[Cue], speaker_of: dict[int, str] | None = None) -> str:
        return "\n".join(_clean(cue.text) for cue in cues) + "\n"


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
