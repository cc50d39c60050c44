// The live room page: one WebSocket, a snapshot kept current by events, and panels drawn from it.
// Events are applied as realtime/client.py applies them (the reference model the tests check).
// Untrusted text is only ever set with textContent. Sound and pictures: media.js.

import { captionSettings } from "/static/captionprefs.js";
import { $, el, errorBox, LANG, RoomSocket, t, tn } from "/static/common.js";
import { RoomMedia } from "/static/media.js";

const root = document.getElementById("room");
const sessionId = Number(root.dataset.sessionId);
const me = Number(root.dataset.personId);
const isStaff = ["organizer", "moderator"].includes(root.dataset.role);
const canCaption = isStaff || root.dataset.role === "captioner";
const CHAT_KEPT = 200;
const MODERATION_KEPT = 200;
const CAPTIONS_KEPT = 50;
const CAPTION_WORDS_SHOWN = 40;
const captionKey = (c) => `${c.speaker_id}|${c.speaker}|${c.track}`;
// Caption tracks a viewer chooses between (realtime/room.py CaptionTrack); the choice is kept per person.
const TRACK_KEY = `forumlive.captionTrack.${me}`;
const TYPING_EVERY_MS = 500; // a captioner's line as typed goes out at most this often
const state = { view: null, you: null, sort: "votes" };
// What people are typing or choosing in panels that are redrawn as events arrive: kept across redraws.
const drafts = { answers: new Map(), choices: new Map() };

const media = new RoomMedia({
  send: sendRaw,
  me,
  onChange: () => { if (state.view) renderStage(state.view); },
  onError: (text) => { const box = $("media-error"); box.textContent = text; box.hidden = false; },
  onStatus: (text) => { $("media-status").textContent = text; },
});

function startMedia() {
  media.reset();
  $("media-error").hidden = true;
  if (window.RTCPeerConnection) media.listen(!$("audio-only").checked);
  else $("media-status").textContent = t("This browser cannot play the stage's sound; captions still work.");
}

const showError = errorBox($("room-error"));

function announce(text) {
  $("announcer").textContent = text;
}

// Connection ---------------------------------------------------------------------------------------

function setConnection(text) {
  const box = $("connection");
  box.textContent = text || "";
  box.hidden = !text;
  root.classList.toggle("offline", Boolean(text));
}

const socket = new RoomSocket({
  url: () => `/ws/sessions/${sessionId}`,
  onWelcome: (message) => {
    state.view = message.snapshot;
    state.you = message.you;
    renderAll();
    startMedia();
  },
  onResumed: () => startMedia(), // the server closed this page's peer connections with the old socket
  onEvent: (kind, data) => {
    applyEvent(state.view, kind, data);
    announceEvent(kind, data);
    renderFor(kind);
  },
  onOther: (message) => { if (message.type && message.type.startsWith("media.")) media.handle(message); },
  onConnection: setConnection,
  onError: (text) => showError(text),
});
function send(message) { socket.send(message); }
// Signaling messages carry no ref: the answer is the reply.
function sendRaw(message) { socket.sendRaw(message); }

// Applying events (mirrors realtime/client.py) -----------------------------------------------------

function upsert(items, item) {
  const index = items.findIndex((x) => x.id === item.id);
  if (index >= 0) items[index] = item; else items.push(item);
  items.sort((a, b) => a.id - b.id);
}

function applyEvent(view, kind, data) {
  switch (kind) {
    case "presence.changed": {
      const gone = new Set(data.left.map((p) => p.id));
      view.roster = view.roster.filter((p) => !gone.has(p.id));
      for (const person of data.joined) if (!view.roster.some((p) => p.id === person.id)) view.roster.push(person);
      view.count = data.count;
      break;
    }
    case "room.state": view.state = data.state; break;
    case "room.locked": view.locked = data.locked; break;
    case "hand.raised": view.hands.push({ person_id: data.person_id, name: data.name, at: data.at }); break;
    case "hand.lowered": view.hands = view.hands.filter((h) => h.person_id !== data.person_id); break;
    case "stage.joined":
      if (!view.stage.some((p) => p.id === data.person_id)) view.stage.push({ id: data.person_id, name: data.name });
      break;
    case "stage.left": view.stage = view.stage.filter((p) => p.id !== data.person_id); break;
    case "chat.posted": view.chat = view.chat.concat([data]).slice(-CHAT_KEPT); break;
    case "chat.deleted": view.chat = view.chat.filter((m) => m.id !== data.id); break;
    case "chat.muted": {
      const muted = new Set(view.muted);
      if (data.muted) muted.add(data.person_id); else muted.delete(data.person_id);
      view.muted = [...muted].sort((a, b) => a - b);
      break;
    }
    case "chat.slow_mode": view.slow_mode_s = data.interval_s; break;
    case "qa.settings": view.pre_approval = data.pre_approval; break;
    case "question.asked":
    case "question.changed":
      if (!("text" in data.question)) view.questions = view.questions.filter((q) => q.id !== data.question.id);
      else upsert(view.questions, data.question);
      break;
    case "question.voted": {
      for (const q of view.questions) if (q.id === data.id) q.votes = data.votes;
      if (data.voter_id === me) {
        const mine = new Set(view.my_votes);
        if (data.voted) mine.add(data.id); else mine.delete(data.id);
        view.my_votes = [...mine].sort((a, b) => a - b);
      }
      break;
    }
    case "poll.changed": upsert(view.polls, data.poll); break;
    case "poll.voted":
      for (const p of view.polls) if (p.id === data.id) { p.counts = data.counts; p.voters = data.voters; }
      if (data.voter_id === me) view.my_poll_votes[String(data.id)] = data.choice;
      break;
    case "media.muted":
      view.media_muted = view.media_muted.filter((m) => m.person_id !== data.person_id || m.kind !== data.kind);
      if (data.muted) view.media_muted.push({ person_id: data.person_id, kind: data.kind, by: data.by });
      view.media_muted.sort((a, b) => a.person_id - b.person_id || a.kind.localeCompare(b.kind));
      break;
    case "moderation.logged": view.moderation = view.moderation.concat([data]).slice(-MODERATION_KEPT); break;
    case "caption.final": view.captions = view.captions.concat([data]).slice(-CAPTIONS_KEPT); break;
    case "caption.partial": {
      const key = captionKey(data);
      view.partials = view.partials.filter((p) => captionKey(p) !== key);
      if (data.text) view.partials.push(data);
      break;
    }
    default: break;
  }
}

function announceEvent(kind, data) {
  if (kind === "media.muted" && data.person_id === me && data.by === "moderator") {
    announce(data.kind === "audio" ? t("A moderator turned off your microphone.") : t("A moderator turned off your camera."));
  }
  if (kind === "stage.left" && data.person_id === me) media.stopLocal(t("You left the stage."));
  if (kind === "question.asked" && data.question.text) announce(t("New question: {text}", { text: data.question.text }));
  if (kind === "question.changed" && data.question.status === "answered") announce(t("Question answered: {text}", { text: data.question.text }));
  if (kind === "question.changed" && data.was === "pending" && data.question.status === "approved") {
    announce(t("Question approved: {text}", { text: data.question.text }));
  }
}

// Drawing ------------------------------------------------------------------------------------------

// The lifecycle a moderator can move the room through (realtime/room.py TRANSITIONS).
const NEXT_STATES = { closed: ["open", "live", "ended"], open: ["live", "ended"], live: ["ended"], ended: [] };
const STATE_LABELS = { closed: t("Doors closed"), open: t("Doors open"), live: t("Live"), ended: t("Ended") };
const ROLE_NAMES = { organizer: t("organizer"), moderator: t("moderator"), speaker: t("speaker"), captioner: t("captioner"),
  participant: t("participant") };
const POLL_STATES = { draft: t("draft"), open: t("open"), closed: t("closed") };

function nameOf(id) {
  const person = state.view.roster.find((p) => p.id === id);
  return person ? person.name : t("Person {id}", { id });
}

// Which panels an event kind changes; everything else stays as it is (and keeps focus).
const PANELS = {
  presence: ["header", "stage", "roster"], room: ["header", "stage", "chat", "questions"], participant: ["roster"],
  hand: ["stage"], stage: ["stage", "roster"], media: ["stage"], chat: ["chat"], qa: ["chat"], question: ["questions"],
  poll: ["polls"], moderation: ["moderation"], caption: ["captions"],
};

function renderFor(kind) {
  const view = state.view;
  const redraw = {
    header: renderHeader, stage: renderStage, roster: renderRoster, chat: renderChat,
    questions: renderQuestions, polls: renderPolls, moderation: isStaff ? renderModeration : () => {},
    captions: renderCaptions,
  };
  const active = document.activeElement;
  const focusKey = active && active.dataset ? active.dataset.key : null;
  for (const panel of PANELS[kind.split(".")[0]] || Object.keys(redraw)) redraw[panel](view);
  if (focusKey) document.querySelector(`[data-key="${focusKey}"]`)?.focus();
}

function renderHeader(view) {
  const badge = $("room-state");
  badge.textContent = STATE_LABELS[view.state] || view.state;
  badge.className = `badge ${view.state === "live" ? "live" : ""}`;
  $("live-count").textContent = String(view.count);
  if (isStaff) {
    for (const button of document.querySelectorAll("#moderator-panel [data-state]")) {
      button.disabled = !(NEXT_STATES[view.state] || []).includes(button.dataset.state);
    }
  }
}

function renderAll() {
  const view = state.view;
  if (!view) return;
  renderHeader(view);
  renderStage(view);
  renderChat(view);
  renderQuestions(view);
  renderPolls(view);
  renderRoster(view);
  renderCaptions(view);
  if (isStaff) renderModeration(view);
}

function languageName(code) {
  try { return new Intl.DisplayNames([LANG], { type: "language" }).of(code) || code; } catch { return code; }
}

function chosenTrack() {
  try { return localStorage.getItem(TRACK_KEY) || (canCaption && !isStaff ? "human" : "machine"); } catch { return "machine"; }
}

// The tracks offered: the spoken language always, the others once they have captions (or were chosen before).
function renderTrackChoice(view) {
  const items = view.captions.concat(view.partials);
  const spoken = [...items].reverse().find((c) => (c.track || "machine") === "machine");
  const labels = {
    machine: spoken ? t("{language} (automatic)", { language: languageName(spoken.language) }) : t("Language spoken (automatic)"),
    translation: t("English translation (automatic)"),
    human: t("Human captions"),
  };
  const chosen = chosenTrack();
  const offered = Object.keys(labels).filter((t) => t === "machine" || t === chosen || items.some((c) => c.track === t)
    || (t === "human" && canCaption));
  const select = $("caption-track");
  const options = offered.map((t) => `${t}:${labels[t]}`).join("|");
  if (select.dataset.options !== options) {
    select.replaceChildren(...offered.map((t) => el("option", { value: t, text: labels[t] })));
    select.dataset.options = options;
  }
  select.value = chosen;
  return chosen;
}

function renderCaptions(view) {
  const on = $("captions-on").checked;
  $("captions").hidden = !on;
  $("caption-partial").hidden = !on;
  const track = renderTrackChoice(view);
  const ofTrack = (c) => (c.track || "machine") === track;
  const captions = view.captions.filter(ofTrack);
  const partials = view.partials.filter(ofTrack);
  // Consecutive finals of one speaker read as one running line; the last lines stay on screen.
  const blocks = [];
  for (const c of captions) {
    const last = blocks[blocks.length - 1];
    if (last && last.key === captionKey(c)) last.text = `${last.text} ${c.text}`;
    else blocks.push({ key: captionKey(c), speaker: c.speaker, text: c.text });
  }
  $("captions").replaceChildren(...blocks.slice(-2).map((b) => el("p", { class: "caption" },
    el("span", { class: "caption-speaker", text: `${b.speaker}: ` }),
    el("span", { text: b.text.split(/\s+/).slice(-CAPTION_WORDS_SHOWN).join(" ") }))));
  $("caption-partial").textContent = partials.map((p) => p.text).join(" ");
  const lag = Math.max(0, ...partials.map((p) => p.lag_s || 0));
  const notes = [];
  if (lag >= 3) notes.push(t("Captions are running {seconds} s behind the speech.", { seconds: Math.round(lag) }));
  if (!captions.length && !partials.length && track !== "machine") notes.push(t("No captions on this track yet."));
  $("caption-lag").textContent = notes.join(" ");
}

const mutedBy = (view, pid, kind) => (view.media_muted.find((m) => m.person_id === pid && m.kind === kind) || {}).by;

function levelBar(level) {
  const bar = el("span", { class: "tile-level", "aria-hidden": "true" });
  bar.style.setProperty("--level", String(level)); // CSSOM, allowed by the page's style-src 'self'
  return bar;
}

function stageTile(view, p) {
  const micOff = mutedBy(view, p.id, "audio");
  const cameraOff = mutedBy(view, p.id, "video");
  const level = micOff ? 0 : Number(media.levels[String(p.id)] || 0);
  const video = cameraOff ? null : media.videoOf(p.id);
  const tile = el("li", { class: `stage-tile${level >= 0.3 && !micOff ? " speaking" : ""}`, "data-person": p.id },
    video || el("span", { class: "avatar", "aria-hidden": "true", text: p.name.split(/\s+/).map((w) => w[0]).join("").slice(0, 2) }),
    el("span", { class: "tile-name", text: p.name }),
    levelBar(level),
    micOff ? el("span", { class: "badge", text: micOff === "moderator" ? t("muted by a moderator") : t("mic off") }) : null,
    cameraOff ? el("span", { class: "badge", text: t("camera off") }) : null);
  if (video && video.paused) video.play().catch(() => {});
  if (isStaff && p.id !== me) {
    tile.append(el("div", { class: "row" },
      el("button", { type: "button", class: "link-button", text: micOff === "moderator" ? t("Allow mic") : t("Mute mic"),
        "aria-label": micOff === "moderator" ? t("Allow the microphone of {name}", { name: p.name }) : t("Mute {name}", { name: p.name }),
        onclick: () => send({ type: "media.mute", person_id: p.id, kind: "audio", muted: micOff !== "moderator" }) }),
      el("button", { type: "button", class: "link-button", text: cameraOff === "moderator" ? t("Allow camera") : t("Stop camera"),
        "aria-label": cameraOff === "moderator" ? t("Allow the camera of {name}", { name: p.name }) : t("Stop the camera of {name}", { name: p.name }),
        onclick: () => send({ type: "media.mute", person_id: p.id, kind: "video", muted: cameraOff !== "moderator" }) }),
      el("button", { type: "button", class: "link-button", text: t("Send back"), "aria-label": t("Send {name} back to the audience", { name: p.name }),
        onclick: () => send({ type: "stage.remove", person_id: p.id }) })));
  }
  return tile;
}

function renderStage(view) {
  $("stage-list").replaceChildren(...view.stage.map((p) => stageTile(view, p)));
  if (!view.stage.length) $("stage-list").append(el("li", { class: "hint", text: t("No one is on stage yet.") }));
  $("hand-list").replaceChildren(...view.hands.map((h) => el("li", {}, el("span", { text: h.name }),
    isStaff ? el("button", { type: "button", class: "link-button", text: t("Invite to stage"),
      onclick: () => send({ type: "stage.invite", person_id: h.person_id }) }) : null,
    isStaff ? el("button", { type: "button", class: "link-button", text: t("Lower"),
      onclick: () => send({ type: "hand.lower", person_id: h.person_id }) }) : null)));
  const raised = view.hands.some((h) => h.person_id === me);
  const onStage = view.stage.some((p) => p.id === me);
  const hand = $("hand-button");
  hand.textContent = raised ? t("Lower hand") : t("Raise hand");
  hand.setAttribute("aria-pressed", String(raised));
  hand.disabled = onStage || view.state === "ended";
  const stageButton = $("stage-button");
  if (stageButton) stageButton.textContent = onStage ? t("Leave the stage") : t("Join the stage");
  renderSpeakerControls(view, onStage);
  $("sound-button").hidden = !media.soundBlocked;
}

function renderSpeakerControls(view, onStage) {
  const controls = $("speaker-controls");
  if (onStage && controls.hidden) fillDevices();
  controls.hidden = !onStage;
  const micOff = mutedBy(view, me, "audio");
  const cameraOff = mutedBy(view, me, "video");
  const publishing = media.publishing;
  $("publish-button").textContent = publishing ? t("Stop my microphone") : t("Start my microphone");
  const mic = $("mic-button");
  mic.disabled = !publishing || (micOff === "moderator" && !isStaff);
  mic.textContent = micOff ? t("Unmute") : t("Mute");
  mic.setAttribute("aria-pressed", String(Boolean(micOff)));
  const camera = $("camera-button");
  camera.disabled = !publishing || cameraOff === "moderator";
  const cameraOn = Boolean(media.local.video);
  camera.textContent = cameraOn ? t("Turn camera off") : t("Turn camera on");
  camera.setAttribute("aria-pressed", String(cameraOn));
  if (media.local.audio) media.local.audio.enabled = !micOff; // the microphone follows the room's state
  if (cameraOff === "moderator" && cameraOn) media.setCamera(false);
}

async function fillDevices() {
  const { audio, video } = await media.devices();
  const fill = (select, devices, none, numbered) => {
    const chosen = select.value;
    select.replaceChildren(...(devices.length ? devices : [{ deviceId: "", label: none }]).map((d, i) =>
      el("option", { value: d.deviceId, text: d.label || numbered(i + 1) })));
    if (chosen) select.value = chosen;
  };
  fill($("mic-select"), audio, t("No microphone found"), (number) => t("Microphone {number}", { number }));
  fill($("camera-select"), video, t("No camera found"), (number) => t("Camera {number}", { number }));
}

function renderChat(view) {
  const list = $("chat-list");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...view.chat.map((m) => el("li", { "data-id": m.id },
    el("strong", { text: m.name }), el("span", { class: "chat-text", text: ` ${m.text}` }),
    isStaff ? el("button", { type: "button", class: "link-button", text: t("Delete"), "aria-label": t("Delete message from {name}", { name: m.name }),
      onclick: () => send({ type: "chat.delete", message_id: m.id }) }) : null,
    isStaff && m.person_id !== me && !view.muted.includes(m.person_id) ? el("button", { type: "button", class: "link-button",
      text: t("Mute"), "aria-label": t("Mute {name}", { name: m.name }), onclick: () => send({ type: "chat.mute", person_id: m.person_id, muted: true }) }) : null)));
  if (atBottom) list.scrollTop = list.scrollHeight;
  const muted = view.muted.includes(me) && !isStaff;
  $("chat-text").disabled = muted || view.state === "ended";
  const notes = [];
  if (muted) notes.push(t("A moderator has muted you in the chat."));
  if (view.slow_mode_s) notes.push(t("Slow mode: one message every {seconds} s.", { seconds: view.slow_mode_s }));
  $("chat-note").textContent = notes.join(" ");
  if (isStaff) {
    $("lock-room").checked = view.locked;
    $("pre-approval").checked = view.pre_approval;
    $("slow-mode").value = String(view.slow_mode_s);
  }
}

function voteLabel(votes) {
  // The name is "Vote, 3 votes" (translated, with its plural), the visible text "▲ 3": the count is in both.
  return [el("span", { class: "visually-hidden", text: tn("Vote, {count} vote", "Vote, {count} votes", votes) }),
    el("span", { "aria-hidden": "true", text: `▲ ${votes}` })];
}

function questionItem(q, view) {
  const voted = view.my_votes.includes(q.id);
  const canVote = q.status === "approved" || q.status === "answered";
  const item = el("li", { class: `question status-${q.status}${q.pinned ? " pinned" : ""}`, "data-id": q.id },
    el("p", { class: "question-text", text: q.text }),
    el("p", { class: "meta", text: `${q.name}${q.pinned ? ` · ${t("pinned")}` : ""}` }));
  if (q.status === "pending") item.append(el("p", { class: "badge", text: t("Waiting for approval") }));
  if (q.status === "dismissed") item.append(el("p", { class: "badge", text: t("Dismissed") }));
  if (q.status === "answered") {
    item.append(el("p", { class: "badge answered", text: t("Answered") }));
    if (q.answer) item.append(el("p", { class: "answer", text: q.answer }));
  }
  const actions = el("div", { class: "row" });
  if (canVote) {
    // Named "Vote, 3 votes" whether pressed or not (aria-pressed says which); the visible count is in the name.
    actions.append(el("button", { type: "button", class: "secondary vote", "aria-pressed": String(voted), "data-key": `vote-${q.id}`,
      onclick: () => send({ type: voted ? "question.unvote" : "question.vote", question_id: q.id }) },
    ...voteLabel(q.votes)));
  }
  if (isStaff) {
    const moderate = (action, extra = {}) => () => send({ type: "question.moderate", question_id: q.id, action, ...extra });
    if (q.status === "pending") actions.append(el("button", { type: "button", text: t("Approve"), onclick: moderate("approve") }));
    if (canVote) actions.append(el("button", { type: "button", class: "secondary", text: q.pinned ? t("Unpin") : t("Pin"), onclick: moderate(q.pinned ? "unpin" : "pin") }));
    if (q.status !== "dismissed") actions.append(el("button", { type: "button", class: "secondary", text: t("Dismiss"), onclick: moderate("dismiss") }));
    if (q.status !== "dismissed" && q.status !== "answered") {
      const input = el("input", { "aria-label": t("Written answer (optional)"), placeholder: t("Written answer (optional)"),
        maxlength: "4000", "data-key": `answer-${q.id}` });
      input.value = drafts.answers.get(q.id) || "";
      input.addEventListener("input", () => drafts.answers.set(q.id, input.value));
      actions.append(input, el("button", { type: "button", text: t("Mark answered"), onclick: () => {
        send({ type: "question.moderate", question_id: q.id, action: "answer", answer: input.value || null });
        drafts.answers.delete(q.id);
      } }));
    }
  }
  item.append(actions);
  return item;
}

function renderQuestions(view) {
  const questions = [...view.questions];
  questions.sort((a, b) => (b.pinned - a.pinned) || (state.sort === "votes" ? b.votes - a.votes || a.id - b.id : b.id - a.id));
  $("question-list").replaceChildren(...questions.map((q) => questionItem(q, view)));
  if (!questions.length) $("question-list").append(el("li", { class: "hint", text: t("No questions yet.") }));
  $("ask-text").disabled = view.state === "ended";
}

function renderPolls(view) {
  const mine = view.my_poll_votes;
  if (!view.polls.length) {
    $("poll-list").replaceChildren(el("p", { class: "hint", text: t("No polls yet.") }));
    return;
  }
  $("poll-list").replaceChildren(...view.polls.map((poll) => {
    const box = el("fieldset", { class: `poll state-${poll.state}` }, el("legend", { text: poll.question }));
    const voted = mine[String(poll.id)];
    const total = poll.counts ? poll.counts.reduce((a, b) => a + b, 0) : 0;
    poll.options.forEach((option, index) => {
      const id = `poll-${poll.id}-${index}`;
      const row = el("div", { class: "check" });
      if (poll.state === "open" && !voted) {
        const chosen = drafts.choices.get(poll.id) || new Set();
        const input = el("input", { type: poll.multiple ? "checkbox" : "radio", name: `poll-${poll.id}`, id,
          value: String(index), "data-key": id, checked: chosen.has(index) });
        input.addEventListener("change", () => {
          const picked = [...box.querySelectorAll("input:checked")].map((x) => Number(x.value));
          drafts.choices.set(poll.id, new Set(picked));
        });
        row.append(input);
      }
      const count = poll.counts ? ` — ${poll.counts[index]} (${total ? Math.round((100 * poll.counts[index]) / total) : 0}%)` : "";
      row.append(el("label", { for: id, text: `${option}${count}${voted && voted.includes(index) ? ` ✓ ${t("your vote")}` : ""}` }));
      box.append(row);
    });
    box.append(el("p", { class: "hint", text: `${tn("{count} voted", "{count} voted", poll.voters)} · ${POLL_STATES[poll.state] || poll.state}${poll.counts ? "" : ` · ${t("results shown when the poll closes")}`}` }));
    if (poll.state === "open" && !voted) {
      box.append(el("button", { type: "button", text: t("Vote"), onclick: () => {
        const chosen = [...box.querySelectorAll("input:checked")].map((input) => Number(input.value));
        if (chosen.length) send({ type: "poll.vote", poll_id: poll.id, option_ids: chosen });
      } }));
    }
    if (isStaff && poll.state === "draft") box.append(el("button", { type: "button", class: "secondary", text: t("Open poll"), onclick: () => send({ type: "poll.open", poll_id: poll.id }) }));
    if (isStaff && poll.state === "open") box.append(el("button", { type: "button", class: "secondary", text: t("Close poll"), onclick: () => send({ type: "poll.close", poll_id: poll.id }) }));
    return box;
  }));
}

function renderRoster(view) {
  $("roster-list").replaceChildren(...view.roster.map((p) => el("li", {},
    el("span", { text: p.name }), el("span", { class: "role", text: ` ${ROLE_NAMES[p.role] || p.role}` }),
    isStaff && p.id !== me && !view.stage.some((s) => s.id === p.id) ? el("button", { type: "button", class: "link-button", text: t("Invite to stage"),
      onclick: () => send({ type: "stage.invite", person_id: p.id }) }) : null,
    isStaff && p.id !== me && !["organizer", "moderator"].includes(p.role) ? el("button", { type: "button", class: "link-button danger",
      text: t("Remove"), onclick: () => {
        if (confirm(t("Remove {name} from this session? They cannot come back.", { name: p.name }))) send({ type: "participant.remove", person_id: p.id });
      } }) : null)));
}

function renderModeration(view) {
  $("moderation-list").replaceChildren(...[...view.moderation].reverse().map((entry) => el("li", {
    text: `${new Date(entry.at * 1000).toLocaleTimeString(LANG)} · ${entry.actor} · ${entry.action}${entry.target_person_id ? ` · ${nameOf(entry.target_person_id)}` : ""}`,
  })));
}

// Controls -----------------------------------------------------------------------------------------

$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("chat-text");
  if (input.value.trim()) send({ type: "chat.send", text: input.value });
  input.value = "";
});
$("ask-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("ask-text");
  if (text.value.trim()) send({ type: "question.ask", text: text.value, anonymous: $("ask-anonymous").checked });
  text.value = "";
});
captionSettings(document.querySelector(".captions-box"), me);
$("captions-on").addEventListener("change", () => renderCaptions(state.view));
$("caption-track").addEventListener("change", (e) => {
  try { localStorage.setItem(TRACK_KEY, e.target.value); } catch { /* private mode: the choice lasts this page */ }
  if (state.view) renderCaptions(state.view);
});

// A captioner's typing box: the line goes out as typed (throttled), and Enter sends it as final.
const typing = { timer: null, sentAt: 0, last: "" };
function captionSpeaker() {
  const name = $("caption-speaker").value.trim();
  return name ? { speaker: name } : {};
}
function sendTyping() {
  typing.timer = null;
  const text = $("caption-text").value.trim();
  if (text === typing.last) return;
  typing.last = text;
  typing.sentAt = Date.now();
  sendRaw({ type: "caption.type", text, final: false, ...captionSpeaker() });
}
if (canCaption) {
  $("caption-text").addEventListener("input", () => {
    if (!typing.timer) typing.timer = setTimeout(sendTyping, Math.max(0, TYPING_EVERY_MS - (Date.now() - typing.sentAt)));
  });
  $("caption-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(typing.timer);
    typing.timer = null;
    const input = $("caption-text");
    if (input.value.trim()) send({ type: "caption.type", text: input.value, final: true, ...captionSpeaker() });
    typing.last = "";
    input.value = "";
  });
}
$("audio-only").addEventListener("change", (e) => media.setVideo(!e.target.checked));
$("sound-button").addEventListener("click", () => media.unblockSound());
$("publish-button").addEventListener("click", async () => {
  $("media-error").hidden = true;
  if (media.publishing) media.stopPublishing();
  else await media.startPublishing({ micId: $("mic-select").value, studio: $("studio-audio").checked });
  fillDevices(); // labels become known once permission is granted
});
$("mic-button").addEventListener("click", () => media.setMicMuted(!mutedBy(state.view, me, "audio")));
$("camera-button").addEventListener("click", () => media.setCamera(!media.local.video, $("camera-select").value));
$("mic-select").addEventListener("change", (e) => media.switchMic(e.target.value, $("studio-audio").checked));
$("hand-button").addEventListener("click", () => {
  const raised = state.view.hands.some((h) => h.person_id === me);
  send(raised ? { type: "hand.lower" } : { type: "hand.raise" });
});
$("stage-button")?.addEventListener("click", () => {
  send(state.view.stage.some((p) => p.id === me) ? { type: "stage.leave" } : { type: "stage.join" });
});
for (const [id, sort] of [["sort-votes", "votes"], ["sort-time", "time"]]) {
  $(id).addEventListener("click", () => {
    state.sort = sort;
    $("sort-votes").setAttribute("aria-pressed", String(sort === "votes"));
    $("sort-time").setAttribute("aria-pressed", String(sort === "time"));
    renderQuestions(state.view);
  });
}
if (isStaff) {
  for (const button of document.querySelectorAll("#moderator-panel [data-state]")) {
    button.addEventListener("click", () => send({ type: "room.state", state: button.dataset.state }));
  }
  $("lock-room").addEventListener("change", (e) => send({ type: "room.lock", locked: e.target.checked }));
  $("pre-approval").addEventListener("change", (e) => send({ type: "qa.settings", pre_approval: e.target.checked }));
  $("slow-mode").addEventListener("change", (e) => send({ type: "chat.slow_mode", interval_s: Number(e.target.value) }));
  $("poll-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const options = $("poll-options").value.split("\n").map((o) => o.trim()).filter(Boolean);
    send({ type: "poll.create", question: $("poll-question").value, options, multiple: $("poll-multiple").checked,
      results: $("poll-hidden").checked ? "on_close" : "live" });
    event.target.reset();
  });
}

socket.connect();
