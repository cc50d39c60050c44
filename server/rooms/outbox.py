"""The database outbox of shared rooms: committed events reach the bus even when their owner dies first.

The bus keeps messages waiting for Redis in memory (``realtime.bus``): a crash of the process loses
them. So the owner of a shared room writes each bus message that carries committed events as a row of
``bus_outbox`` (topic, payload, the node that wrote it, an id that only grows) in the transaction that
commits those events (``commit``), publishes it after applying them, and deletes the row once Redis has
taken the message (``delete``, in batches, by ``SharedRoomService``). A process that becomes a room's
owner reads, in the transaction that stamps its new epoch into the room's row, the rows other processes
left for the room's topic (``claim_room``) and publishes them, in id order, before its own state; it then
deletes them in the same way. Replicas apply those late events when they are the next of the old epoch,
drop copies by ``seq``, and ignore a batch of an epoch they have already left (``server.rooms.shared``).

All functions here take a database session and run in a worker thread (``Database.write``/``read``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete as sql_delete
from sqlalchemy import func
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from realtime.log import Event
from realtime.room import Room
from server.rooms import cluster, store
from server.storage.models import BusOutbox

# Ids deleted per statement (the bound parameters of one IN list).
DELETE_CHUNK = 500


def commit(db: DbSession, room: Room, events: list[Event], now: float, node: str) -> tuple[int, bytes]:
    """Commit one command's durable events of a shared room (fenced, as ``store.commit``) and, in the same
    transaction, the bus message that will carry all its events; returns the row's id and the message.

    The events are not applied yet (the caller holds the room's lock and applies them after the commit):
    their ``seq`` will follow the room's, which the message carries already.

    Raises:
        RoomError: as ``store.commit`` (``room_moved``, ``already_voted``): nothing is written.
    """
    store.commit(db, room, events, now, fenced=True)
    payload = cluster.dumps(cluster.batch(node, room.log.epoch, events, first_seq=room.log.seq + 1))
    row = BusOutbox(
        topic=cluster.room_topic(room.session_id), node=node, payload=payload, created_at=store.to_time(now)
    )
    db.add(row)
    db.flush()
    assert row.id is not None
    return row.id, payload


def claim_room(db: DbSession, session_id: int, node: str) -> tuple[Room, list[tuple[int, bytes]]]:
    """``store.claim_room`` (a new epoch, the former owner fenced out) and, read under the same lock on the
    room's row, the messages other processes left unpublished on the room's topic, oldest first.

    Every commit of a former owner is either before the lock (its row is read here) or refused after it.

    Raises:
        NotFound: no such session.
    """
    room = store.claim_room(db, session_id)
    rows = db.exec(
        select(BusOutbox.id, BusOutbox.payload)
        .where(BusOutbox.topic == cluster.room_topic(session_id), BusOutbox.node != node)
        .order_by(col(BusOutbox.id))
    ).all()
    return room, [(row_id, bytes(payload)) for row_id, payload in rows if row_id is not None]


def delete(db: DbSession, ids: Iterable[int]) -> int:
    """Delete the rows whose messages Redis has taken; returns how many were still there."""
    ordered = sorted(set(ids))
    deleted = 0
    for start in range(0, len(ordered), DELETE_CHUNK):
        chunk = ordered[start : start + DELETE_CHUNK]
        result = db.exec(sql_delete(BusOutbox).where(col(BusOutbox.id).in_(chunk)))  # type: ignore[call-overload]
        deleted += result.rowcount or 0
    return deleted


def count(db: DbSession) -> int:
    """Rows waiting in the outbox, of every process."""
    return int(db.exec(select(func.count()).select_from(BusOutbox)).one())
