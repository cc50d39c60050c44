"""``/metrics`` in Prometheus's text format: connections, rooms, events, queue drops, the bus and its
database outbox, caption lag.

Counters only grow (Prometheus's ``rate()`` turns them into events per second); gauges are read when
scraped. Everything is about this process: with several, Prometheus scrapes each (docs/deploy.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, object], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        inner = ",".join(f'{key}="{_label(v)}"' for key, v in labels.items())
        lines.append(f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}")
    return lines


def render(rooms: object, captions: object) -> str:
    """The metrics of a room service and a caption service, as Prometheus text."""
    live = list(getattr(rooms, "rooms", {}).values())
    owned = sum(1 for room in live if rooms.owns(room))  # type: ignore[attr-defined]
    lines = [
        *_metric(
            "forumlive_connections",
            "gauge",
            "Room WebSocket connections open in this process.",
            [({}, sum(len(room.connections) for room in live))],
        ),
        *_metric(
            "forumlive_rooms",
            "gauge",
            "Live rooms loaded in this process: owned (their state machine runs here) or replicas.",
            [({"role": "owner"}, owned), ({"role": "replica"}, len(live) - owned)],
        ),
        *_metric(
            "forumlive_room_events_total",
            "counter",
            "Room events delivered to this process's connections (rate() gives events per second).",
            [({}, getattr(rooms, "events_delivered", 0))],
        ),
        *_metric(
            "forumlive_slow_consumers_total",
            "counter",
            "Connections closed because their send queue was full (they resume).",
            [({}, getattr(rooms, "slow_consumers", 0))],
        ),
    ]
    bus = getattr(rooms, "bus", None)
    if bus is not None:
        gaps = getattr(rooms, "bus_gaps", {})
        lines += _metric(
            "forumlive_bus_pending",
            "gauge",
            "Messages waiting in this process's outbox for Redis.",
            [({}, bus.pending)],
        )
        lines += _metric(
            "forumlive_outbox_rows",
            "gauge",
            "Database outbox rows: committed event batches whose bus message Redis has not taken (or whose row is "
            "not deleted yet). mine: published or taken over by this process; all: of every process at its last "
            "heartbeat, with those a dead owner left for the room's next owner.",
            [
                ({"scope": "mine"}, len(getattr(rooms, "outbox_waiting", ()))),
                ({"scope": "all"}, getattr(rooms, "outbox_rows", 0)),
            ],
        )
        lines += _metric(
            "forumlive_bus_gaps_total",
            "counter",
            "Gaps seen on the rooms' topics (a replica then resyncs), by reason.",
            [({"reason": reason}, gaps.get(reason, 0)) for reason in ("slow", "trimmed", "reset", "unavailable")],
        )
    streams = captions.status() if captions is not None else []  # type: ignore[attr-defined]
    lines += _metric(
        "forumlive_caption_lag_seconds",
        "gauge",
        "How far each live caption stream runs behind the speech.",
        [
            ({"session": s["session_id"], "speaker_id": s["speaker_id"], "track": s["track"]}, float(s["lag_s"]))
            for s in streams
        ],
    )
    return "\n".join(lines) + "\n"


async def metrics(request: Request) -> Response:
    state = request.app.state
    return Response(render(state.rooms, getattr(state, "captions", None)), media_type=CONTENT_TYPE)
