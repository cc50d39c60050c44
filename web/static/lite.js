// The lite page: captions of one track and the Q&A over the lite room socket (server/lite.py), which
// sends only what this page shows. No video; sound only when asked for (media.js is loaded then).
// Untrusted text is only ever set with textContent. Attendance: the socket's visit, as for the room page
// (a beacon visit on top of it would count the same minutes twice; see docs/accessibility.md).

import { captionSettings } from "/static/captionprefs.js";

const root = document.getElementById("lite");
const sessionId = Number(root.dataset.sessionId);
const me = Number(root.dataset.personId);
const TRACK_KEY = `forumlive.captionTrack.${me}`; // the same choice as the full room page
const CAPTIONS_KEPT = 20;
const WORDS_SHOWN = 40;
// The page's language (server/i18n.py chose it): messages from web/static/i18n/LANG.json, English otherwise.
const LANG = document.documentElement.lang || "en";
const MESSAGES = LANG === "en" ? {} : await fetch(`/static/i18n/${LANG}.json`).then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
const t = (message, values = {}) => (MESSAGES[message] || message).replace(/\{(\w+)\}/g, (_, key) => String(values[key]));
const STATE_LABELS = { closed: t("Doors closed"), open: t("Doors open"), live: t("Live"), ended: t("Ended") };
const FINAL_CLOSES = new Map([[4401, t("Please sign in again.")], [4403, t("You cannot enter this room.")],
  [4404, t("This session does not exist.")], [4429, t("Too many open tabs for this room; close one and reload.")]]);

const state = { epoch: null, seq: 0, view: null, socket: null, refs: 0, retry: 0, media: null };
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function chosenTrack() {
  try { return localStorage.getItem(TRACK_KEY) || "machine"; } catch { return "machine"; }
}

function showError(text) {
  const box = $("room-error");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function setConnection(text) {
  $("connection").textContent = text;
  $("connection").hidden = !text;
}

function send(message) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) { showError(t("Not connected; your action was not sent.")); return; }
  state.refs += 1;
  state.socket.send(JSON.stringify({ ...message, ref: `r${state.refs}` }));
}

function sendRaw(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(message));
}

// Connection: a track change starts afresh (hello), a dropped connection resumes.
function connect(fresh = false) {
  if (fresh) state.epoch = null;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/sessions/${sessionId}/lite?track=${encodeURIComponent(chosenTrack())}`);
  state.socket = socket;
  socket.addEventListener("open", () => {
    socket.send(JSON.stringify(state.epoch ? { type: "resume", v: 1, epoch: state.epoch, last_seq: state.seq } : { type: "hello", v: 1 }));
  });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    clearInterval(state.pinger);
    if (state.socket !== socket) return;
    const final = FINAL_CLOSES.get(event.code);
    if (final) { setConnection(`${t("Disconnected:")} ${final}`); return; }
    state.retry += 1;
    setConnection(t("Reconnecting…"));
    setTimeout(connect, Math.min(10000, 500 * 2 ** state.retry) * (0.5 + Math.random() / 2));
  });
}

function ready() {
  state.retry = 0;
  setConnection("");
  clearInterval(state.pinger);
  state.pinger = setInterval(() => sendRaw({ type: "ping" }), 20000);
  if (state.media) { state.media.reset(); state.media.listen(false); }
}

function receive(message) {
  switch (message.type) {
    case "welcome":
      state.epoch = message.epoch;
      state.seq = message.seq;
      state.view = message.snapshot;
      ready();
      render();
      break;
    case "resumed":
      state.epoch = message.epoch;
      ready();
      break;
    case "event":
      // The lite socket leaves out what this page does not show: gaps in seq are expected.
      if (message.epoch !== state.epoch || message.seq <= state.seq) return;
      state.seq = message.seq;
      if (message.kind !== "skip") apply(state.view, message.kind, message.data);
      break;
    case "error":
      showError(message.message);
      break;
    default:
      if (message.type.startsWith("media.") && state.media) state.media.handle(message);
  }
}

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
      if (kind === "question.asked" && q.text) $("announcer").textContent = `New question: ${q.text}`;
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
  const old = state.socket;
  state.socket = null;
  if (old) old.close();
  connect(true);
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

connect();
