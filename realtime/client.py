"""A reference client model: a snapshot kept current by applying the events a viewer receives.

The browser's room page (``web/static/room.js``) applies events the same way; tests use this model
to check that a snapshot plus the events after it always equals a fresh snapshot.
"""

from __future__ import annotations

from typing import Any

from realtime.room import CAPTIONS_KEPT, CHAT_KEPT, MODERATION_KEPT, caption_key


class ClientState:
    """What one viewer knows of a room: the snapshot, the last sequence number, and duplicates dropped."""

    def __init__(self, person_id: int, welcome: dict[str, Any]) -> None:
        self.person_id = person_id
        self.reset(welcome)

    def reset(self, welcome: dict[str, Any]) -> None:
        self.epoch: str = welcome["epoch"]
        self.seq: int = welcome["seq"]
        self.view: dict[str, Any] = welcome["snapshot"]

    def receive(self, message: dict[str, Any]) -> bool:
        """Apply an ``event`` message; returns False for a duplicate (already seen ``seq``).

        Raises:
            ValueError: a gap in the sequence or a message from another epoch (the caller resumes).
        """
        if message["epoch"] != self.epoch:
            raise ValueError("event from another epoch")
        if message["seq"] <= self.seq:
            return False
        if message["seq"] != self.seq + 1:
            raise ValueError(f"gap: expected seq {self.seq + 1}, got {message['seq']}")
        self.seq = message["seq"]
        if message["kind"] != "skip":
            apply_event(self.view, message["kind"], message["data"], self.person_id)
        return True


def _upsert(items: list[dict[str, Any]], item: dict[str, Any]) -> None:
    for index, existing in enumerate(items):
        if existing["id"] == item["id"]:
            items[index] = item
            return
    items.append(item)
    items.sort(key=lambda i: i["id"])


def apply_event(view: dict[str, Any], kind: str, data: dict[str, Any], me: int) -> None:
    """Change a snapshot ``view`` as the event ``kind`` with (already filtered) ``data`` says."""
    if kind == "presence.changed":
        gone = {p["id"] for p in data["left"]}
        view["roster"] = [p for p in view["roster"] if p["id"] not in gone]
        present = {p["id"] for p in view["roster"]}
        view["roster"].extend(p for p in data["joined"] if p["id"] not in present)
        view["count"] = data["count"]
    elif kind == "room.state":
        view["state"] = data["state"]
    elif kind == "room.locked":
        view["locked"] = data["locked"]
    elif kind == "hand.raised":
        view["hands"].append({"person_id": data["person_id"], "name": data["name"], "at": data["at"]})
    elif kind == "hand.lowered":
        view["hands"] = [h for h in view["hands"] if h["person_id"] != data["person_id"]]
    elif kind == "stage.joined":
        if all(p["id"] != data["person_id"] for p in view["stage"]):
            view["stage"].append({"id": data["person_id"], "name": data["name"]})
    elif kind == "stage.left":
        view["stage"] = [p for p in view["stage"] if p["id"] != data["person_id"]]
    elif kind == "chat.posted":
        view["chat"] = (view["chat"] + [data])[-CHAT_KEPT:]
    elif kind == "chat.deleted":
        view["chat"] = [m for m in view["chat"] if m["id"] != data["id"]]
    elif kind == "chat.muted":
        muted = set(view["muted"])
        (muted.add if data["muted"] else muted.discard)(data["person_id"])
        view["muted"] = sorted(muted)
    elif kind == "chat.slow_mode":
        view["slow_mode_s"] = data["interval_s"]
    elif kind == "qa.settings":
        view["pre_approval"] = data["pre_approval"]
    elif kind in ("question.asked", "question.changed"):
        question = data["question"]
        if "text" not in question:  # no longer visible to this viewer
            view["questions"] = [q for q in view["questions"] if q["id"] != question["id"]]
        else:
            _upsert(view["questions"], question)
    elif kind == "question.voted":
        for question in view["questions"]:
            if question["id"] == data["id"]:
                question["votes"] = data["votes"]
        if data.get("voter_id") == me:
            mine = set(view["my_votes"])
            (mine.add if data["voted"] else mine.discard)(data["id"])
            view["my_votes"] = sorted(mine)
    elif kind == "poll.changed":
        _upsert(view["polls"], data["poll"])
    elif kind == "poll.voted":
        for poll in view["polls"]:
            if poll["id"] == data["id"]:
                poll["counts"], poll["voters"] = data["counts"], data["voters"]
        if data.get("voter_id") == me:
            view["my_poll_votes"][str(data["id"])] = data["choice"]
    elif kind == "moderation.logged":
        view["moderation"] = (view["moderation"] + [data])[-MODERATION_KEPT:]
    elif kind == "caption.final":
        view["captions"] = (view["captions"] + [data])[-CAPTIONS_KEPT:]
    elif kind == "caption.partial":
        key = caption_key(data)
        view["partials"] = [p for p in view["partials"] if caption_key(p) != key]
        if data["text"]:
            view["partials"].append(data)
    elif kind == "media.muted":
        view["media_muted"] = [
            m for m in view["media_muted"] if (m["person_id"], m["kind"]) != (data["person_id"], data["kind"])
        ]
        if data["muted"]:
            view["media_muted"].append({"person_id": data["person_id"], "kind": data["kind"], "by": data["by"]})
            view["media_muted"].sort(key=lambda m: (m["person_id"], m["kind"]))
    elif kind.startswith("cafe."):
        apply_cafe_event(view["cafe"], kind, data)
    elif kind == "participant.removed":
        pass  # the removed person's connections close; presence.changed follows
    else:
        raise ValueError(f"unknown event kind {kind!r}")


def apply_cafe_event(cafe: dict[str, Any], kind: str, data: dict[str, Any]) -> None:
    """Change the ``cafe`` part of a snapshot as a ``cafe.*`` event says."""
    if kind == "cafe.table.added":
        cafe["tables"] = sorted([*cafe["tables"], data["table"]], key=lambda t: t["id"])
    elif kind == "cafe.seated":
        moved = {m["person_id"]: m for m in data["moves"]}
        kept = [s for s in cafe["seated"] if s["person_id"] not in moved]
        seated = [{"person_id": m["person_id"], "name": m["name"], "table_id": m["table_id"]} for m in moved.values()]
        cafe["seated"] = sorted(kept + [s for s in seated if s["table_id"] is not None], key=lambda s: s["person_id"])
    elif kind == "cafe.round":
        cafe["phase"] = "round" if data["state"] == "running" else "break"
        for key in ("round", "started_at", "ends_at", "warning"):
            cafe[key] = data[key]
    elif kind == "cafe.note":
        notes = [n for n in cafe["notes"] if n["id"] != data["note"]["id"]]
        if data["action"] != "deleted":
            notes.append(data["note"])
        cafe["notes"] = sorted(notes, key=lambda n: n["id"])
    elif kind == "cafe.chat.posted":
        cafe["chat"] = [*cafe["chat"], data][-500:]
    elif kind == "cafe.broadcast":
        cafe["broadcast"] = {"person_id": data["person_id"], "name": data["name"]} if data["on"] else None
    elif kind == "cafe.plenary":
        cafe["phase"], cafe["reporting_table_id"] = "plenary", data["reporting_table_id"]
    else:
        raise ValueError(f"unknown event kind {kind!r}")
