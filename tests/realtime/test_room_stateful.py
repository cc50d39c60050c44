"""Hypothesis stateful test of a room with clients that disconnect and resume at any time.

Checks after every step: votes equal unique voters; every connected client that has received its
events sees exactly a fresh snapshot (so snapshot + replay = fresh snapshot); no client ever meets
a gap or a reordering in the sequence numbers (ClientState raises on either).
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from realtime import protocol as p
from realtime.client import ClientState
from realtime.room import Actor, Role, Room, RoomError, RoomSettings, RoomState
from realtime.views import render, snapshot
from tests.fakes import MemoryIds

ACTORS = [
    Actor(1, "Mo", Role.MODERATOR),
    Actor(2, "Sam", Role.SPEAKER),
    Actor(3, "Ana", Role.PARTICIPANT),
    Actor(4, "Ben", Role.PARTICIPANT),
    Actor(5, "Cy", Role.PARTICIPANT),
]
people = st.sampled_from(ACTORS)
ids = st.integers(1, 4)
pids = st.integers(1, 5)

participant_commands = st.one_of(
    st.builds(p.SendChat, type=st.just("chat.send"), text=st.sampled_from(["hi", "<b>x</b>", "ok"])),
    st.builds(p.AskQuestion, type=st.just("question.ask"), text=st.just("Q?"), anonymous=st.booleans()),
    st.builds(p.VoteQuestion, type=st.just("question.vote"), question_id=ids),
    st.builds(p.UnvoteQuestion, type=st.just("question.unvote"), question_id=ids),
    st.builds(
        p.VotePoll,
        type=st.just("poll.vote"),
        poll_id=st.integers(1, 3),
        option_ids=st.lists(st.integers(0, 2), min_size=1, max_size=2),
    ),
    st.builds(p.RaiseHand, type=st.just("hand.raise")),
    st.builds(p.LowerHand, type=st.just("hand.lower")),
    st.builds(p.JoinStage, type=st.just("stage.join")),
    st.builds(p.LeaveStage, type=st.just("stage.leave")),
    st.builds(p.MuteMedia, type=st.just("media.mute"), kind=st.sampled_from(["audio", "video"]), muted=st.booleans()),
)
moderator_commands = st.one_of(
    st.builds(p.DeleteChat, type=st.just("chat.delete"), message_id=ids),
    st.builds(p.MuteChat, type=st.just("chat.mute"), person_id=pids, muted=st.booleans()),
    st.builds(p.SlowMode, type=st.just("chat.slow_mode"), interval_s=st.sampled_from([0, 0, 5])),
    st.builds(
        p.ModerateQuestion,
        type=st.just("question.moderate"),
        question_id=ids,
        action=st.sampled_from(["approve", "dismiss", "pin", "unpin", "answer"]),
        answer=st.sampled_from([None, "Yes."]),
    ),
    st.builds(p.QaSettings, type=st.just("qa.settings"), pre_approval=st.booleans()),
    st.builds(
        p.CreatePoll,
        type=st.just("poll.create"),
        question=st.just("Which?"),
        options=st.just(["a", "b", "c"]),
        multiple=st.booleans(),
        results=st.sampled_from(["live", "on_close"]),
    ),
    st.builds(p.OpenPoll, type=st.just("poll.open"), poll_id=ids),
    st.builds(p.ClosePoll, type=st.just("poll.close"), poll_id=ids),
    st.builds(p.LowerHand, type=st.just("hand.lower"), person_id=pids),
    st.builds(p.InviteToStage, type=st.just("stage.invite"), person_id=pids),
    st.builds(p.RemoveFromStage, type=st.just("stage.remove"), person_id=pids),
    st.builds(p.LockRoom, type=st.just("room.lock"), locked=st.booleans()),
    st.builds(
        p.MuteMedia,
        type=st.just("media.mute"),
        person_id=pids,
        kind=st.sampled_from(["audio", "video"]),
        muted=st.booleans(),
    ),
)


class RoomWithClients(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.room = Room(1, RoomSettings(state=RoomState.LIVE))
        self.ids = MemoryIds()
        self.now = 0.0
        self.clients: dict[int, ClientState] = {}  # connected
        self.inbox: dict[int, list[str]] = {}
        self.saved: dict[int, tuple[str, int]] = {}  # disconnected: (epoch, last_seq)
        self.old_views: dict[int, dict] = {}  # disconnected: what the client still shows
        for actor in ACTORS:
            self.connect(actor)
        self.flush_presence()

    def _broadcast(self, events: list) -> None:
        for pid in self.clients:
            actor = ACTORS[pid - 1]
            self.inbox[pid].extend(render(self.room, e, actor) for e in events)

    def _welcome(self, actor: Actor) -> dict:
        message = {"epoch": self.room.log.epoch, "seq": self.room.log.seq, "snapshot": snapshot(self.room, actor)}
        return json.loads(json.dumps(message))

    @rule(actor=people)
    def connect(self, actor: Actor) -> None:
        pid = actor.person_id
        if pid in self.clients or pid in self.room.removed:
            return
        self.room.connect(actor)
        epoch_seq = self.saved.pop(pid, None)
        self.inbox[pid] = []
        missed = self.room.log.since(*epoch_seq) if epoch_seq else None
        if missed is None:
            self.clients[pid] = ClientState(pid, self._welcome(actor))
            return
        client = ClientState(pid, {"epoch": epoch_seq[0], "seq": epoch_seq[1], "snapshot": self.old_views[pid]})
        for event in missed:
            client.receive(json.loads(render(self.room, event, actor)))
        self.clients[pid] = client

    @precondition(lambda self: bool(self.clients))
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.clients)))
        client = self.clients.pop(pid)
        self.inbox.pop(pid)  # frames in flight are lost
        self.saved[pid] = (client.epoch, client.seq)
        self.old_views[pid] = client.view
        self._broadcast(self.room.disconnect(pid))

    @rule(actor=people, command=participant_commands)
    def participate(self, actor: Actor, command: p.Command) -> None:
        self._act(actor, command)

    @rule(command=moderator_commands)
    def moderate(self, command: p.Command) -> None:
        self._act(ACTORS[0], command)

    @rule(multiple=st.booleans(), results=st.sampled_from(["live", "on_close"]))
    def start_poll(self, multiple: bool, results: str) -> None:
        created = p.CreatePoll(
            type="poll.create", question="Now?", options=["x", "y", "z"], multiple=multiple, results=results
        )  # type: ignore[arg-type]
        self._act(ACTORS[0], created)
        if self.room.polls:
            self._act(ACTORS[0], p.OpenPoll(type="poll.open", poll_id=max(self.room.polls)))

    def _act(self, actor: Actor, command: p.Command) -> None:
        if actor.person_id not in self.room.members:
            return
        self.now += 3
        try:
            events = self.room.decide(actor, command, self.now)
        except RoomError:
            return
        self._broadcast(self.room.apply(self.ids.commit(events)))

    @rule()
    def flush_presence(self) -> None:
        self._broadcast(self.room.flush_presence())

    @precondition(lambda self: bool(self.clients))
    @rule(data=st.data(), duplicate=st.booleans())
    def deliver(self, data: st.DataObject, duplicate: bool) -> None:
        pid = data.draw(st.sampled_from(sorted(self.clients)))
        frames = self.inbox[pid]
        if duplicate and frames:
            frames = frames + frames[-1:]
        for frame in frames:
            self.clients[pid].receive(json.loads(frame))
        self.inbox[pid] = []

    @invariant()
    def votes_equal_unique_voters(self) -> None:
        for question in self.room.questions.values():
            assert question.to_data()["votes"] == len(set(question.voters))
        for poll in self.room.polls.values():
            assert sum(poll.counts()) == sum(len(choice) for choice in poll.votes.values())

    @invariant()
    def caught_up_clients_see_a_fresh_snapshot(self) -> None:
        for pid, client in self.clients.items():
            if not self.inbox[pid]:
                assert client.seq == self.room.log.seq
                assert client.view == snapshot(self.room, ACTORS[pid - 1])


TestRoomWithClients = RoomWithClients.TestCase
TestRoomWithClients.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
