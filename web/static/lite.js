// The lite page: captions of one track and the Q&A over the lite room socket (server/lite.py), which
// sends only what this page shows. No video; sound only when asked for (media.js is loaded then).
// Untrusted text is only ever set with textContent. Attendance: the socket's visit, as for the room page
// (a beacon visit on top of it would count the same minutes twice; see docs/accessibility.md).

import { captionSettings } from "/static/captionprefs.js";
import { $, el, errorBox, RoomSocket, t } from "/static/common.js";

const root = document.getElementById("lite");
const sessionId = Number(root.dataset.sessionId);
const me = Number(root.dataset.personId);
const TRACK_KEY = `forumlive.captionTrack.${me}`; // the same choice as the full room page
const CAPTIONS_KEPT = 20;
const WORDS_SHOWN = 40;
const STATE_LABELS = { closed: t("Doors closed"), open: t("Doors open"), live: t("Live"), ended: t("Ended") };

const state = { view: null, media: null };

function chosenTrack() {
  try { return localStorage.getItem(TRACK_KEY) || "machine"; } catch { return "machine"; }
}

const showError = errorBox($("room-error"));

function setConnection(text) {
  $("connection").textContent = text;
  $("connection").hidden = !text;
}

function restartMedia() {
  if (state.media) { state.media.reset(); state.media.listen(false); }
}

// A track change starts afresh (hello), a dropped connection resumes.
const socket = new RoomSocket({
  url: () => `/ws/sessions/${sessionId}/lite?track=${encodeURIComponent(chosenTrack())}`,
  gaps: true, // the lite socket leaves out what this page does not show
  onWelcome: (message) => { state.view = message.snapshot; restartMedia(); render(); },
  onResumed: restartMedia,
  onEvent: (kind, data) => apply(state.view, kind, data),
  onOther: (message) => { if (message.type.startsWith("media.") && state.media) state.media.handle(message); },
  onConnection: setConnection,
  onError: showError,
});
const send = (message) => socket.send(message);
const sendRaw = (message) => socket.sendRaw(message);

function apply(view, kind, data) {
  switch (kind) {
    case "presence.changed": view.count = data.count; renderHeader(); break;
    case "room.state": view.state = data.state; renderHeader(); break;
    case "caption.final":
      view.captions = view.captions.concat([data]).slice(-CAPTIONS_KEPT);
      renderCaptions();
      break;
    case "caption.partial":
      view.partials = view.partials.filter((p) => p.speaker_id !== data.speaker_id || p.speaker !== data.speaker);
      if (data.text) view.partials.push(data);
      renderCaptions();
      break;
    case "question.asked":
    case "question.changed": {
      const q = data.question;
      view.questions = view.questions.filter((x) => x.id !== q.id);
      if ("text" in q) view.questions.push(q);
      if (kind === "question.asked" && q.text) $("announcer").textContent = t("New question: {text}", { text: q.text });
      renderQuestions();
      break;
    }
    case "question.voted":
      for (const q of view.questions) if (q.id === data.id) q.votes = data.votes;
      if (data.voter_id === me) {
        view.my_votes = view.my_votes.filter((id) => id !== data.id);
        if (data.voted) view.my_votes.push(data.id);
      }
      renderQuestions();
      break;
    default: break;
  }
}

// Drawing ------------------------------------------------------------------------------------------

function render() {
  renderHeader();
  renderCaptions();
  renderQuestions();
}

function renderHeader() {
  const view = state.view;
  $("room-state").textContent = STATE_LABELS[view.state] || view.state;
  $("room-state").className = `badge ${view.state === "live" ? "live" : ""}`;
  $("live-count").textContent = String(view.count);
  $("ask-text").disabled = view.state === "ended";
}

function renderCaptions() {
  const view = state.view;
  const blocks = [];
  for (const c of view.captions) {
    const last = blocks[blocks.length - 1];
    if (last && last.speaker === c.speaker) last.text = `${last.text} ${c.text}`;
    else blocks.push({ speaker: c.speaker, text: c.text });
  }
  $("captions").replaceChildren(...blocks.slice(-2).map((b) => el("p", { class: "caption" },
    el("span", { class: "caption-speaker", text: `${b.speaker}: ` }),
    el("span", { text: b.text.split(/\s+/).slice(-WORDS_SHOWN).join(" ") }))));
  $("caption-partial").textContent = view.partials.map((p) => p.text).join(" ");
  const lag = Math.max(0, ...view.partials.map((p) => p.lag_s || 0));
  $("caption-lag").textContent = lag >= 3 ? t("Captions are running {seconds} s behind the speech.", { seconds: Math.round(lag) })
    : (!view.captions.length && !view.partials.length ? t("No captions on this track yet.") : "");
}

function renderQuestions() {
  const view = state.view;
  const questions = [...view.questions].sort((a, b) => (b.pinned - a.pinned) || b.votes - a.votes || a.id - b.id);
  const active = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
  $("question-list").replaceChildren(...questions.map((q) => {
    const voted = view.my_votes.includes(q.id);
    const item = el("li", { class: `question status-${q.status}${q.pinned ? " pinned" : ""}`, "data-id": q.id },
      el("p", { class: "question-text", text: q.text }),
      el("p", { class: "meta", text: `${q.name}${q.pinned ? ` · ${t("pinned")}` : ""}` }));
    if (q.status === "pending") item.append(el("p", { class: "badge", text: t("Waiting for approval") }));
    if (q.status === "answered") {
      item.append(el("p", { class: "badge answered", text: t("Answered") }));
      if (q.answer) item.append(el("p", { class: "answer", text: q.answer }));
    }
    if (q.status === "approved" || q.status === "answered") {
      // Named the same whether pressed or not (aria-pressed says which), with the visible count in the name.
      item.append(el("button", { type: "button", class: "secondary vote", "aria-pressed": String(voted), "data-key": `vote-${q.id}`,
        onclick: () => send({ type: voted ? "question.unvote" : "question.vote", question_id: q.id }) },
      el("span", { "aria-hidden": "true", text: `▲ ${q.votes}` }),
      el("span", { class: "visually-hidden", text: t("Vote (votes so far: {count})", { count: q.votes }) })));
    }
    return item;
  }));
  if (!questions.length) $("question-list").append(el("li", { class: "hint", text: t("No questions yet.") }));
  if (active) document.querySelector(`[data-key="${active}"]`)?.focus();
}

// Controls -----------------------------------------------------------------------------------------

captionSettings(document.querySelector(".captions-box"), me);
$("caption-track").value = chosenTrack();
$("caption-track").addEventListener("change", (event) => {
  try { localStorage.setItem(TRACK_KEY, event.target.value); } catch { /* private mode: this page only */ }
  socket.restart();
});
$("ask-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("ask-text");
  if (text.value.trim()) send({ type: "question.ask", text: text.value, anonymous: $("ask-anonymous").checked });
  text.value = "";
});
$("audio-button").addEventListener("click", async () => {
  const button = $("audio-button");
  if (state.media) {
    state.media.reset(); // closing the peer connection ends the server's side of it
    state.media = null;
  } else {
    if (!window.RTCPeerConnection) { $("media-status").textContent = t("This browser cannot play sound here; captions still work."); return; }
    const { RoomMedia } = await import("/static/media.js");
    state.media = new RoomMedia({ send: sendRaw, me, onChange: () => {},
      onError: (text) => { $("media-error").textContent = text; $("media-error").hidden = false; },
      onStatus: (text) => { $("media-status").textContent = text; } });
    state.media.listen(false);
  }
  button.setAttribute("aria-pressed", String(Boolean(state.media)));
  button.textContent = state.media ? t("Stop listening") : t("Listen (audio only)");
});

socket.connect();
