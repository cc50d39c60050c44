"""The room core without sockets: permissions, chat, Q&A, polls, stage, lifecycle and views."""

from __future__ import annotations

import json

import pytest

from realtime import protocol as p
from realtime.client import ClientState
from realtime.room import Actor, Role, Room, RoomError, RoomSettings, RoomState
from realtime.views import render, snapshot
from tests.fakes import MemoryIds

MOD = Actor(1, "Mo Moderator", Role.MODERATOR)
ORG = Actor(2, "Olu Organizer", Role.ORGANIZER)
SPEAKER = Actor(3, "Sam Speaker", Role.SPEAKER)
ANA = Actor(4, "Ana", Role.PARTICIPANT)
BEN = Actor(5, "Ben", Role.PARTICIPANT)


class Harness:
    """A room plus the id-giving seam, driven like the server drives it."""

    def __init__(self, state: RoomState = RoomState.LIVE, **settings: object) -> None:
        self.room = Room(7, RoomSettings(state=state, **settings))  # type: ignore[arg-type]
        self.ids = MemoryIds()
        self.now = 1000.0
        for actor in (MOD, SPEAKER, ANA, BEN):
            self.room.connect(actor)
        self.room.flush_presence()

    def do(self, actor: Actor, command: p.Command) -> list:
        self.now += 1
        events = self.room.decide(actor, command, self.now)
        return self.room.apply(self.ids.commit(events))

    def view(self, actor: Actor) -> dict:
        return snapshot(self.room, actor)


def test_chat_flow_with_delete_mute_and_slow_mode() -> None:
    """Messages post; moderators delete and mute; slow mode spaces a participant's messages."""
    h = Harness()
    posted = h.do(ANA, p.SendChat(type="chat.send", text="Hello from Accra"))
    message_id = posted[0].data["id"]
    assert [m["text"] for m in h.view(BEN)["chat"]] == ["Hello from Accra"]
    with pytest.raises(RoomError) as info:
        h.do(BEN, p.DeleteChat(type="chat.delete", message_id=message_id))
    assert info.value.code == "forbidden"
    h.do(MOD, p.DeleteChat(type="chat.delete", message_id=message_id))
    assert h.view(BEN)["chat"] == []
    h.do(MOD, p.MuteChat(type="chat.mute", person_id=BEN.person_id, muted=True))
    with pytest.raises(RoomError, match="muted"):
        h.do(BEN, p.SendChat(type="chat.send", text="hi"))
    assert h.view(BEN)["muted"] == [BEN.person_id] and h.view(ANA)["muted"] == []
    h.do(MOD, p.SlowMode(type="chat.slow_mode", interval_s=30))
    h.now += 30
    h.do(ANA, p.SendChat(type="chat.send", text="one"))
    with pytest.raises(RoomError) as info:
        h.do(ANA, p.SendChat(type="chat.send", text="two"))
    assert info.value.code == "slow_mode"
    h.do(MOD, p.SendChat(type="chat.send", text="moderators are exempt"))
    h.now += 30
    h.do(ANA, p.SendChat(type="chat.send", text="two"))
    assert [e["action"] for e in h.view(MOD)["moderation"]] == ["chat.delete", "chat.mute", "chat.slow_mode"]
    assert h.view(ANA)["moderation"] == []


def test_pre_approval_hides_pending_questions_from_everyone_but_author_and_staff() -> None:
    """In pre-approval mode the author sees their pending question, others do not, until approval."""
    h = Harness(pre_approval=True)
    asked = h.do(ANA, p.AskQuestion(type="question.ask", text="How do we fund rural networks?"))
    qid = asked[0].data["question"]["id"]
    assert [q["status"] for q in h.view(ANA)["questions"]] == ["pending"]
    assert h.view(BEN)["questions"] == []
    assert [q["id"] for q in h.view(MOD)["questions"]] == [qid]
    frame = json.loads(render(h.room, asked[0], BEN))
    assert frame["kind"] == "skip" and "data" not in frame
    with pytest.raises(RoomError) as info:
        h.do(BEN, p.VoteQuestion(type="question.vote", question_id=qid))
    assert info.value.code == "not_found"
    h.do(MOD, p.ModerateQuestion(type="question.moderate", question_id=qid, action="approve"))
    assert [q["text"] for q in h.view(BEN)["questions"]] == ["How do we fund rural networks?"]
    h.do(MOD, p.ModerateQuestion(type="question.moderate", question_id=qid, action="answer", answer="Universal funds."))
    assert h.view(ANA)["questions"][0]["status"] == "answered"
    assert h.view(BEN)["questions"][0]["answer"] == "Universal funds."


def test_votes_once_per_person_and_unvote() -> None:
    """A person's second vote is refused; unvoting lowers the count; votes equal unique voters."""
    h = Harness()
    qid = h.do(ANA, p.AskQuestion(type="question.ask", text="Q?"))[0].data["question"]["id"]
    h.do(BEN, p.VoteQuestion(type="question.vote", question_id=qid))
    with pytest.raises(RoomError) as info:
        h.do(BEN, p.VoteQuestion(type="question.vote", question_id=qid))
    assert info.value.code == "already_voted"
    h.do(ANA, p.VoteQuestion(type="question.vote", question_id=qid))
    assert h.view(MOD)["questions"][0]["votes"] == 2
    assert h.view(BEN)["my_votes"] == [qid]
    h.do(BEN, p.UnvoteQuestion(type="question.unvote", question_id=qid))
    assert h.view(MOD)["questions"][0]["votes"] == 1 and h.view(BEN)["my_votes"] == []


def test_anonymous_questions_hide_the_author_from_participants_only() -> None:
    """Other participants see 'Anonymous'; moderators and the author see who asked."""
    h = Harness()
    h.do(ANA, p.AskQuestion(type="question.ask", text="Is my data safe?", anonymous=True))
    assert h.view(BEN)["questions"][0]["name"] == "Anonymous"
    assert h.view(BEN)["questions"][0]["person_id"] is None
    assert h.view(MOD)["questions"][0]["name"] == "Ana"
    assert h.view(ANA)["questions"][0]["name"] == "Ana"


def test_poll_lifecycle_and_hidden_results() -> None:
    """Drafts are staff-only; one vote per person; results hidden until close when asked."""
    h = Harness()
    created = h.do(
        MOD, p.CreatePoll(type="poll.create", question="Best format?", options=["TalkX", "Café"], results="on_close")
    )
    pid = created[0].data["poll"]["id"]
    assert h.view(ANA)["polls"] == []
    with pytest.raises(RoomError):
        h.do(ANA, p.VotePoll(type="poll.vote", poll_id=pid, option_ids=[0]))
    h.do(MOD, p.OpenPoll(type="poll.open", poll_id=pid))
    h.do(ANA, p.VotePoll(type="poll.vote", poll_id=pid, option_ids=[1]))
    with pytest.raises(RoomError) as info:
        h.do(ANA, p.VotePoll(type="poll.vote", poll_id=pid, option_ids=[0]))
    assert info.value.code == "already_voted"
    with pytest.raises(RoomError, match="choose one"):
        h.do(BEN, p.VotePoll(type="poll.vote", poll_id=pid, option_ids=[0, 1]))
    assert h.view(BEN)["polls"][0]["counts"] is None
    assert h.view(MOD)["polls"][0]["counts"] == [0, 1]
    assert h.view(ANA)["my_poll_votes"] == {str(pid): [1]}
    h.do(MOD, p.ClosePoll(type="poll.close", poll_id=pid))
    assert h.view(BEN)["polls"][0]["counts"] == [0, 1]
    with pytest.raises(RoomError) as info:
        h.do(BEN, p.VotePoll(type="poll.vote", poll_id=pid, option_ids=[0]))
    assert info.value.code == "poll_closed"


def test_stage_and_hands() -> None:
    """Hands queue; a moderator invites to stage (lowering the hand); speakers join themselves."""
    h = Harness()
    h.do(ANA, p.RaiseHand(type="hand.raise"))
    h.do(BEN, p.RaiseHand(type="hand.raise"))
    assert [x["person_id"] for x in h.view(MOD)["hands"]] == [ANA.person_id, BEN.person_id]
    with pytest.raises(RoomError):
        h.do(ANA, p.JoinStage(type="stage.join"))
    with pytest.raises(RoomError):
        h.do(ANA, p.InviteToStage(type="stage.invite", person_id=BEN.person_id))
    h.do(MOD, p.InviteToStage(type="stage.invite", person_id=ANA.person_id))
    h.do(SPEAKER, p.JoinStage(type="stage.join"))
    assert [p["id"] for p in h.view(BEN)["stage"]] == [ANA.person_id, SPEAKER.person_id]
    assert h.view(BEN)["stage"][0]["name"] == "Ana"
    assert [x["person_id"] for x in h.view(MOD)["hands"]] == [BEN.person_id]
    h.do(MOD, p.LowerHand(type="hand.lower", person_id=BEN.person_id))
    h.do(MOD, p.RemoveFromStage(type="stage.remove", person_id=ANA.person_id))
    assert h.view(BEN)["stage"] == [{"id": SPEAKER.person_id, "name": "Sam Speaker"}] and h.view(BEN)["hands"] == []


def test_lifecycle_lock_and_removal() -> None:
    """Doors open → live → ended; locked rooms admit no newcomers; removed people cannot come back."""
    h = Harness(state=RoomState.CLOSED)
    with pytest.raises(RoomError) as info:
        h.room.admit(Actor(9, "Late", Role.PARTICIPANT))
    assert info.value.code == "room_closed"
    h.room.admit(SPEAKER)
    h.do(MOD, p.SetRoomState(type="room.state", state="open"))
    h.room.admit(Actor(9, "Late", Role.PARTICIPANT))
    h.do(MOD, p.LockRoom(type="room.lock", locked=True))
    with pytest.raises(RoomError) as info:
        h.room.admit(Actor(9, "Late", Role.PARTICIPANT))
    assert info.value.code == "room_locked"
    h.room.admit(ANA)  # already inside
    h.do(MOD, p.RemoveParticipant(type="participant.remove", person_id=BEN.person_id))
    with pytest.raises(RoomError) as info:
        h.room.admit(BEN)
    assert info.value.code == "removed"
    with pytest.raises(RoomError) as info:
        h.do(ANA, p.RemoveParticipant(type="participant.remove", person_id=MOD.person_id))
    assert info.value.code == "forbidden"
    h.do(MOD, p.SetRoomState(type="room.state", state="live"))
    with pytest.raises(RoomError) as info:
        h.do(MOD, p.SetRoomState(type="room.state", state="open"))
    assert info.value.code == "bad_transition"
    h.do(MOD, p.SetRoomState(type="room.state", state="ended"))
    with pytest.raises(RoomError) as info:
        h.do(ANA, p.SendChat(type="chat.send", text="too late"))
    assert info.value.code == "room_ended"
    assert h.room.settings().removed == [BEN.person_id]


def test_presence_counts_connections_and_is_announced_in_batches() -> None:
    """A second tab adds nobody; arrivals and departures since the last flush come as one event."""
    h = Harness()
    h.room.connect(ANA)  # a second tab
    assert h.room.disconnect(ANA.person_id) == [] and not h.room.presence_pending()
    h.room.disconnect(ANA.person_id)
    newcomers = [Actor(10 + i, f"Guest {i}", Role.PARTICIPANT) for i in range(3)]
    for actor in newcomers:
        h.room.connect(actor)
    (event,) = h.room.flush_presence()
    assert event.kind == "presence.changed"
    assert [p["id"] for p in event.data["joined"]] == [10, 11, 12]
    assert [p["id"] for p in event.data["left"]] == [ANA.person_id]
    assert event.data["count"] == 6
    assert h.room.flush_presence() == []
    staff_roster = {p["id"] for p in h.view(MOD)["roster"]}
    public_roster = {p["id"] for p in h.view(BEN)["roster"]}
    assert {10, 11, 12} <= staff_roster and ANA.person_id not in staff_roster
    assert public_roster == {MOD.person_id, SPEAKER.person_id}  # participants are counted, not listed
    assert h.view(BEN)["count"] == 6
    public = json.loads(render(h.room, event, BEN))["data"]
    assert public == {"joined": [], "left": [], "count": 6}


def test_decide_changes_nothing() -> None:
    """decide() only computes events: state and sequence stay as they were until apply()."""
    h = Harness()
    before = (h.view(MOD), h.room.log.seq)
    h.room.decide(ANA, p.SendChat(type="chat.send", text="x"), 5.0)
    h.room.decide(MOD, p.SetRoomState(type="room.state", state="ended"), 5.0)
    assert (h.view(MOD), h.room.log.seq) == before


def test_client_state_follows_events() -> None:
    """A client applying rendered events stays equal to a fresh snapshot, and drops duplicates."""
    h = Harness()
    welcome = {"epoch": h.room.log.epoch, "seq": h.room.log.seq, "snapshot": h.view(BEN)}
    client = ClientState(BEN.person_id, json.loads(json.dumps(welcome)))
    events = h.do(ANA, p.AskQuestion(type="question.ask", text="Q", anonymous=True))
    events += h.do(BEN, p.VoteQuestion(type="question.vote", question_id=events[0].data["question"]["id"]))
    for event in events:
        assert client.receive(json.loads(render(h.room, event, BEN)))
    assert not client.receive(json.loads(render(h.room, events[-1], BEN)))
    assert client.view == h.view(BEN)


def test_captions_partials_replace_and_finals_accumulate() -> None:
    """A partial replaces the speaker's previous one; finals append; a client stays equal to a snapshot."""
    h = Harness()
    welcome = {"epoch": h.room.log.epoch, "seq": h.room.log.seq, "snapshot": h.view(BEN)}
    client = ClientState(BEN.person_id, json.loads(json.dumps(welcome)))
    speaker = {"speaker_id": SPEAKER.person_id, "speaker": "Sam Speaker", "track": "machine", "language": "en"}
    events = h.ids.commit(h.room.decide_captions(speaker, [], (0.0, 0.8, "we connected")))
    events += h.room.apply(events)[:0]
    events += h.room.apply(
        h.room.decide_captions(speaker, [(0.0, 1.6, "We connected forty schools.", 1764064000.0)], None)
    )
    assert h.room.decide_captions(speaker, [], None) == []  # nothing changed, nothing sent
    for event in events:
        client.receive(json.loads(render(h.room, event, BEN)))
    view = h.view(BEN)
    assert [c["text"] for c in view["captions"]] == ["We connected forty schools."]
    assert view["partials"] == []
    assert client.view == view
    assert [e.durable for e in events] == [False, True, False]


CAPTIONER = Actor(6, "Cleo Captioner", Role.CAPTIONER)


def test_a_captioner_types_the_human_track_and_others_may_not() -> None:
    """A captioner's partials replace each other and the finished line is a stored final of the human track,
    in the session's language; a participant is refused; a client stays equal to a snapshot."""
    h = Harness()
    h.room.language = "es"
    h.room.connect(CAPTIONER)
    welcome = {"epoch": h.room.log.epoch, "seq": h.room.log.seq, "snapshot": h.view(BEN)}
    client = ClientState(BEN.person_id, json.loads(json.dumps(welcome)))
    with pytest.raises(RoomError) as info:
        h.do(ANA, p.TypeCaption(type="caption.type", text="hola", final=True))
    assert info.value.code == "forbidden"
    events = h.do(CAPTIONER, p.TypeCaption(type="caption.type", text="Bienvenidos"))
    events += h.do(CAPTIONER, p.TypeCaption(type="caption.type", text="Bienvenidos a la"))
    assert h.do(CAPTIONER, p.TypeCaption(type="caption.type", text="Bienvenidos a la")) == []  # no change
    h.now += 2
    events += h.do(CAPTIONER, p.TypeCaption(type="caption.type", text="Bienvenidos a la sesión.", final=True))
    assert [(e.kind, e.data["text"], e.durable) for e in events] == [
        ("caption.partial", "Bienvenidos", False),
        ("caption.partial", "Bienvenidos a la", False),
        ("caption.final", "Bienvenidos a la sesión.", True),
        ("caption.partial", "", False),  # the line being typed is cleared
    ]
    for event in events:
        assert (event.data["track"], event.data["language"], event.data["speaker"]) == ("human", "es", CAPTIONER.name)
        client.receive(json.loads(render(h.room, event, BEN)))
    final = events[2].data
    assert final["at"] == events[0].data["at"] and final["end_s"] == pytest.approx(5.0)  # from the first keystroke
    view = h.view(BEN)
    assert [c["text"] for c in view["captions"]] == ["Bienvenidos a la sesión."] and view["partials"] == []
    assert client.view == view
    moderated = h.do(MOD, p.TypeCaption(type="caption.type", text="Applause.", final=True, speaker="Room"))
    assert [(e.kind, e.data["speaker"]) for e in moderated] == [("caption.final", "Room")]  # staff may too


def test_a_captioners_unfinished_line_is_cleared_when_the_speaker_changes_or_they_leave() -> None:
    """Naming another speaker mid-line, or leaving the room, clears the partial the captioner left."""
    h = Harness()
    h.room.connect(CAPTIONER)
    h.do(CAPTIONER, p.TypeCaption(type="caption.type", text="We connected", speaker="Hana"))
    switched = h.do(CAPTIONER, p.TypeCaption(type="caption.type", text="Thank you", speaker="Chair"))
    assert [(e.data["speaker"], e.data["text"]) for e in switched] == [("Hana", ""), ("Chair", "Thank you")]
    assert [x["speaker"] for x in h.view(BEN)["partials"]] == ["Chair"]
    left = h.room.disconnect(CAPTIONER.person_id)
    assert [(e.kind, e.data["speaker"], e.data["text"]) for e in left] == [("caption.partial", "Chair", "")]
    assert h.view(BEN)["partials"] == []


def test_captioners_enter_closed_rooms_and_typed_lines_are_checked() -> None:
    """Like speakers, captioners may enter before the doors open; a blank final or an overlong line is refused."""
    Harness(RoomState.CLOSED).room.admit(CAPTIONER)
    with pytest.raises(p.ProtocolError, match="blank"):
        p.parse_client(json.dumps({"type": "caption.type", "text": "  ", "final": True}))
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client(json.dumps({"type": "caption.type", "text": "x" * (p.CAPTION_MAX_CHARS + 1)}))
    assert info.value.code == "invalid"
    clear = p.parse_client(json.dumps({"type": "caption.type", "text": "", "final": False}))
    assert isinstance(clear, p.TypeCaption) and clear.text == ""


def test_media_mute_rules() -> None:
    """Self-mute on stage; moderators mute anyone on stage; only a moderator lifts a moderator's mute."""
    h = Harness()
    h.do(SPEAKER, p.JoinStage(type="stage.join"))
    muted = h.do(SPEAKER, p.MuteMedia(type="media.mute", kind="video", muted=True))
    assert [e.data for e in muted] == [{"person_id": 3, "kind": "video", "muted": True, "by": "self"}]
    assert h.do(SPEAKER, p.MuteMedia(type="media.mute", kind="video", muted=True)) == []  # already
    h.do(SPEAKER, p.MuteMedia(type="media.mute", kind="video", muted=False))
    with pytest.raises(RoomError) as info:
        h.do(ANA, p.MuteMedia(type="media.mute", kind="audio", muted=True, person_id=3))
    assert info.value.code == "forbidden"
    with pytest.raises(RoomError) as info:
        h.do(MOD, p.MuteMedia(type="media.mute", kind="audio", muted=True, person_id=4))
    assert info.value.code == "not_on_stage"
    events = h.do(MOD, p.MuteMedia(type="media.mute", kind="audio", muted=True, person_id=3))
    assert [e.kind for e in events] == ["media.muted", "moderation.logged"]
    assert h.view(ANA)["media_muted"] == [{"person_id": 3, "kind": "audio", "by": "moderator"}]
    with pytest.raises(RoomError) as info:
        h.do(SPEAKER, p.MuteMedia(type="media.mute", kind="audio", muted=False))
    assert "moderator" in info.value.message
    assert h.do(SPEAKER, p.MuteMedia(type="media.mute", kind="audio", muted=True)) == []  # muted already, harder
    h.do(MOD, p.MuteMedia(type="media.mute", kind="audio", muted=False, person_id=3))
    # Lifting the moderator's mute hands control back: the speaker unmutes when ready.
    assert h.view(ANA)["media_muted"] == [{"person_id": 3, "kind": "audio", "by": "self"}]
    assert h.do(MOD, p.MuteMedia(type="media.mute", kind="audio", muted=False, person_id=3)) == []
    h.do(SPEAKER, p.MuteMedia(type="media.mute", kind="audio", muted=False))
    assert h.view(ANA)["media_muted"] == []
    client = ClientState(ANA.person_id, {"epoch": h.room.log.epoch, "seq": h.room.log.seq, "snapshot": h.view(ANA)})
    events = h.do(MOD, p.MuteMedia(type="media.mute", kind="video", muted=True, person_id=3))
    for event in events:
        client.receive(json.loads(render(h.room, event, ANA)))
    assert client.view["media_muted"] == h.view(ANA)["media_muted"]
