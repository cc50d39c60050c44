// The café floor: the room's socket, the café part of its snapshot kept current by cafe.* events
// (as realtime/client.py apply_cafe_event does), tables drawn with their seats, a countdown on the
// server's clock, the table's chat and note cards, and the moderator's controls. Untrusted text is
// only ever set with textContent. Table audio: media.js (the server sends each page its table only).

import { $, el, errorBox, RoomSocket, serverText, t, tn } from "/static/common.js";
import { RoomMedia } from "/static/media.js";

const root = document.getElementById("cafe");
const sessionId = Number(root.dataset.sessionId);
const me = Number(root.dataset.personId);
const isStaff = ["organizer", "moderator"].includes(root.dataset.role);
const TABLE_CHAT_KEPT = 500;
const PHASES = { setup: t("Setting up"), round: t("Round running"), break: t("Between rounds"), plenary: t("Plenary") };

const state = { view: null, offset: 0, editing: new Map() };
const showError = errorBox($("cafe-error"));
const announce = (text) => { $("announcer").textContent = text; };

const media = new RoomMedia({
  send: sendRaw,
  me,
  onChange: () => {},
  onError: (text) => { const box = $("media-error"); box.textContent = text; box.hidden = false; },
  onStatus: (text) => { $("media-status").textContent = text; },
});

// Connection ---------------------------------------------------------------------------------------

function setConnection(text) {
  $("connection").textContent = text || "";
  $("connection").hidden = !text;
}

function startMedia() {
  media.reset();
  $("media-error").hidden = true;
  if (window.RTCPeerConnection) media.listen(false);
}

const socket = new RoomSocket({
  url: () => `/ws/sessions/${sessionId}`,
  refPrefix: "c",
  onWelcome: (message) => {
    if (!message.snapshot.cafe) { setConnection(t("This session is not a knowledge café.")); return; }
    state.view = message.snapshot;
    setClock(message.snapshot.cafe.now);
    render();
    startMedia();
  },
  onResumed: () => startMedia(),
  onEvent: (kind, data) => {
    if (!state.view) return;
    applyEvent(state.view, kind, data);
    render();
  },
  onOther: (message) => { if (message.type && message.type.startsWith("media.")) media.handle(message); },
  onConnection: setConnection,
  onError: (text) => showError(text),
});
function send(message) { socket.send(message); }
function sendRaw(message) { socket.sendRaw(message); }

// Applying events (mirrors realtime/client.py apply_cafe_event) -------------------------------------

function setClock(serverNow) {
  // The countdown runs on the server's clock: remember how far this page's clock is off.
  if (typeof serverNow === "number") state.offset = serverNow - Date.now() / 1000;
}

function applyEvent(view, kind, data) {
  const cafe = view.cafe;
  switch (kind) {
    case "presence.changed": {
      const gone = new Set(data.left.map((p) => p.id));
      view.roster = view.roster.filter((p) => !gone.has(p.id));
      for (const person of data.joined) if (!view.roster.some((p) => p.id === person.id)) view.roster.push(person);
      view.count = data.count;
      break;
    }
    case "cafe.table.added":
      cafe.tables = cafe.tables.concat([data.table]).sort((a, b) => a.id - b.id);
      break;
    case "cafe.seated": {
      const moved = new Map(data.moves.map((m) => [m.person_id, m]));
      const kept = cafe.seated.filter((s) => !moved.has(s.person_id));
      const now = data.moves.filter((m) => m.table_id !== null)
        .map((m) => ({ person_id: m.person_id, name: m.name, table_id: m.table_id }));
      cafe.seated = kept.concat(now).sort((a, b) => a.person_id - b.person_id);
      const mine = moved.get(me);
      if (mine) announce(mine.table_id === null ? t("You left your table.") : t("You are now at the table {topic}.", { topic: topicOf(mine.table_id) }));
      break;
    }
    case "cafe.round":
      cafe.phase = data.state === "running" ? "round" : "break";
      Object.assign(cafe, { round: data.round, started_at: data.started_at, ends_at: data.ends_at, warning: data.warning });
      setClock(data.now);
      if (data.state === "ended") {
        serverText(data.rotation_error || "").then((why) => announce(`${t("Round {round} has ended.", { round: data.round })}${why ? ` ${why}` : ""}`));
      }
      break;
    case "cafe.note": {
      const notes = cafe.notes.filter((n) => n.id !== data.note.id);
      if (data.action !== "deleted") notes.push(data.note);
      cafe.notes = notes.sort((a, b) => a.id - b.id);
      break;
    }
    case "cafe.chat.posted": cafe.chat = cafe.chat.concat([data]).slice(-TABLE_CHAT_KEPT); break;
    case "cafe.broadcast": cafe.broadcast = data.on ? { person_id: data.person_id, name: data.name } : null; break;
    case "cafe.plenary": cafe.phase = "plenary"; cafe.reporting_table_id = data.reporting_table_id; break;
    default: break; // the room's other events are the live room page's business
  }
}

// Drawing ------------------------------------------------------------------------------------------

const myTable = () => state.view.cafe.seated.find((s) => s.person_id === me)?.table_id ?? null;
const topicOf = (id) => state.view.cafe.tables.find((t) => t.id === id)?.topic ?? t("table {id}", { id });
const initials = (name) => name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");

function render() {
  const cafe = state.view.cafe;
  const active = document.activeElement;
  const focusKey = active && active.dataset ? active.dataset.key : null;
  $("cafe-phase").textContent = PHASES[cafe.phase] || cafe.phase;
  $("round-label").textContent = cafe.round ? t("Round {round}", { round: cafe.round }) : t("No round yet");
  const warning = cafe.phase === "round" && cafe.warning;
  $("round-warning").hidden = !warning;
  $("round-warning").textContent = warning ? t("The round ends soon: wrap up your notes.") : "";
  $("broadcast-note").hidden = !cafe.broadcast;
  $("broadcast-note").textContent = cafe.broadcast ? t("{name} is speaking to all tables.", { name: cafe.broadcast.name }) : "";
  renderFloor(cafe);
  renderMyTable(cafe);
  renderNotes(cafe);
  renderPlenary(cafe);
  if (isStaff) renderControls(cafe);
  tick();
  if (focusKey) document.querySelector(`[data-key="${focusKey}"]`)?.focus();
}

function renderFloor(cafe) {
  const mine = myTable();
  const items = cafe.tables.map((table) => {
    const people = cafe.seated.filter((s) => s.table_id === table.id);
    const seats = people.map((p) => el("li", { class: `seat${p.person_id === table.host_id ? " host" : ""}`, title: p.name },
      el("span", { class: "initials", "aria-hidden": "true", text: initials(p.name) }),
      el("span", { class: "visually-hidden", text: p.person_id === table.host_id ? t("{name} (host)", { name: p.name }) : p.name })));
    for (let i = people.length; i < table.seats; i += 1) seats.push(el("li", { class: "seat free", text: t("free") }));
    const full = people.length >= table.seats && !isStaff && table.host_id !== me;
    const here = mine === table.id;
    const closed = cafe.phase === "plenary";
    const button = el("button", {
      type: "button", class: here ? "secondary" : "", disabled: here || full || closed,
      // The visible text starts the name (WCAG 2.5.3), the table's topic follows.
      "aria-label": here ? t("You are here: {topic}", { topic: table.topic })
        : full ? t("Full: {topic}", { topic: table.topic }) : t("Join {topic}", { topic: table.topic }),
      text: here ? t("You are here") : full ? t("Full") : t("Join"),
      onclick: () => send({ type: "cafe.join", table_id: table.id }),
    });
    return el("li", { class: `cafe-table${here ? " mine" : ""}`, "data-table-id": table.id },
      el("h3", { text: table.topic }),
      table.host ? el("p", { class: "hint", text: t("Host: {name}", { name: table.host }) }) : null,
      el("p", { class: "hint", text: tn("{taken} of {count} seat taken", "{taken} of {count} seats taken", table.seats, { taken: people.length }) }),
      el("ul", { class: "seats", "aria-label": t("Seats at {topic}", { topic: table.topic }) }, ...seats),
      button);
  });
  $("tables").replaceChildren(...(items.length ? items : [el("li", { class: "empty", text: t("No tables yet.") })]));
}

function renderMyTable(cafe) {
  const mine = myTable();
  $("my-table-topic").textContent = mine === null ? t("Choose a table to join.") : topicOf(mine);
  $("leave-button").hidden = mine === null;
  $("mic-button").hidden = mine === null || Boolean(media.pub);
  $("table-chat-form").hidden = mine === null;
  const lines = cafe.chat.filter((m) => m.table_id === mine)
    .map((m) => el("li", {}, el("strong", { text: `${m.name}: ` }), el("span", { text: m.text })));
  $("table-chat").replaceChildren(...lines);
}

function renderNotes(cafe) {
  const mine = myTable();
  const hostHere = cafe.tables.some((t) => t.id === mine && t.host_id === me);
  $("note-form").hidden = mine === null;
  const cards = cafe.notes.filter((n) => n.table_id === mine).map((note) => {
    const draft = state.editing.get(note.id);
    const body = draft === undefined
      ? el("p", { class: "note-text", text: note.text })
      : el("input", { value: draft, "aria-label": t("Edit the card"), "data-key": `edit-${note.id}`,
        oninput: (e) => state.editing.set(note.id, e.target.value) });
    const actions = draft === undefined
      ? [el("button", { type: "button", class: "secondary", text: t("Edit"), onclick: () => { state.editing.set(note.id, note.text); render(); } }),
        el("button", { type: "button", class: "secondary", text: t("Delete"), onclick: () => send({ type: "cafe.note.delete", note_id: note.id }) })]
      : [el("button", { type: "button", text: t("Save"), onclick: () => {
        send({ type: "cafe.note.edit", note_id: note.id, text: state.editing.get(note.id) });
        state.editing.delete(note.id);
      } })];
    if (hostHere || isStaff) {
      actions.push(el("button", { type: "button", class: "secondary", "aria-pressed": String(note.insight),
        text: note.insight ? t("Key insight ★") : t("Mark key insight"),
        onclick: () => send({ type: "cafe.note.insight", note_id: note.id, insight: !note.insight }) }));
    }
    return el("li", { class: `note${note.insight ? " insight" : ""}` }, body,
      el("p", { class: "hint", text: `${note.name}${note.insight ? ` · ${t("key insight")}` : ""}` }), el("div", { class: "row" }, ...actions));
  });
  $("notes").replaceChildren(...cards);
}

function renderPlenary(cafe) {
  const open = cafe.phase === "plenary";
  $("plenary").hidden = !open;
  if (!open) return;
  const reporting = cafe.reporting_table_id;
  $("reporting").hidden = reporting === null;
  $("reporting").textContent = reporting === null ? "" : t("Reporting back now: {topic}", { topic: topicOf(reporting) });
  const items = cafe.tables.map((table) => el("li", { class: `board-table${table.id === reporting ? " reporting" : ""}` },
    el("h3", { text: table.topic }),
    el("ul", {}, ...cafe.notes.filter((n) => n.table_id === table.id && n.insight).map((n) => el("li", { text: n.text })))));
  $("board").replaceChildren(...items);
}

function renderControls(cafe) {
  const running = cafe.phase === "round";
  const plenary = cafe.phase === "plenary";
  for (const id of ["seat-button", "rotate-button", "start-round"]) $(id).disabled = running || plenary;
  for (const id of ["extend-round", "shorten-round", "end-round"]) $(id).disabled = !running;
  $("plenary-button").disabled = running;
  $("report-button").disabled = running || !cafe.tables.length;
  const broadcasting = cafe.broadcast && cafe.broadcast.person_id === me;
  $("broadcast-button").setAttribute("aria-pressed", String(Boolean(broadcasting)));
  $("broadcast-button").textContent = broadcasting ? t("Stop speaking to all tables") : t("Speak to all tables");
  const hosts = new Set(cafe.tables.map((t) => t.host_id));
  const host = $("table-host");
  const chosen = host.value;
  host.replaceChildren(el("option", { value: "", text: t("no host") }),
    ...state.view.roster.filter((p) => !hosts.has(p.id)).map((p) => el("option", { value: p.id, text: p.name })));
  host.value = [...host.options].some((o) => o.value === chosen) ? chosen : "";
  const report = $("report-table");
  const picked = report.value;
  report.replaceChildren(...cafe.tables.map((t) => el("option", { value: t.id, text: t.topic })));
  if (picked) report.value = picked;
}

function tick() {
  const cafe = state.view && state.view.cafe;
  const box = $("countdown");
  const running = Boolean(cafe && cafe.phase === "round" && cafe.ends_at !== null);
  $("round-clock").hidden = !running;  // between rounds the label says where the café is; no empty timer
  if (!running) { box.textContent = ""; return; }
  const left = Math.max(0, Math.round(cafe.ends_at - (Date.now() / 1000 + state.offset)));
  box.textContent = t("{time} left", { time: `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` });
}

// Controls -----------------------------------------------------------------------------------------

function wire() {
  $("table-chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("table-chat-text").value.trim();
    if (text) send({ type: "cafe.chat", text });
    $("table-chat-text").value = "";
  });
  $("note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("note-text").value.trim();
    if (text) send({ type: "cafe.note.add", text });
    $("note-text").value = "";
  });
  $("leave-button").addEventListener("click", () => send({ type: "cafe.leave" }));
  $("mic-button").addEventListener("click", async () => {
    await media.startPublishing({ micId: null, studio: false });
    if (state.view) render();
  });
  if (!isStaff) return;
  $("table-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const host = $("table-host").value;
    send({ type: "cafe.table.add", topic: $("table-topic").value.trim(), seats: Number($("table-seats").value),
      ...(host ? { host_id: Number(host) } : {}) });
    $("table-topic").value = "";
  });
  $("seat-button").addEventListener("click", () => send({ type: "cafe.seat" }));
  $("rotate-button").addEventListener("click", () => send({ type: "cafe.rotate" }));
  $("start-round").addEventListener("click", () => send({ type: "cafe.round.start", duration_s: Math.round(Number($("round-minutes").value) * 60) }));
  $("extend-round").addEventListener("click", () => send({ type: "cafe.round.adjust", delta_s: 60 }));
  $("shorten-round").addEventListener("click", () => send({ type: "cafe.round.adjust", delta_s: -60 }));
  $("end-round").addEventListener("click", () => send({ type: "cafe.round.end" }));
  $("broadcast-button").addEventListener("click", async () => {
    const on = $("broadcast-button").getAttribute("aria-pressed") !== "true";
    send({ type: "cafe.broadcast", on });
    if (on) await media.startPublishing({ micId: null, studio: false });
    else media.stopPublishing();
  });
  $("plenary-button").addEventListener("click", () => send({ type: "cafe.plenary" }));
  $("report-button").addEventListener("click", () => send({ type: "cafe.plenary", table_id: Number($("report-table").value) }));
}

wire();
setInterval(tick, 250);
socket.connect();
