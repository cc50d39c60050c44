// Shared by the room, café and lite pages: DOM helpers, the page's messages (web/static/i18n/LANG.json,
// the same msgids as the templates' catalogues) and the room socket with its resume (docs/protocol.md).
// Untrusted text is only ever set with textContent.

export const $ = (id) => document.getElementById(id);

// An element with attributes, listeners (onclick…), text (textContent) and children; false or null
// attributes and children are left out.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value != null) node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

// The page's language (server/i18n.py chose it): messages from web/static/i18n/LANG.json, English otherwise.
// A page may carry the part of it that its scripts use (the lite page: #page-messages, server/i18n.py's
// page_catalogue); the others fetch the whole catalogue.
export const LANG = document.documentElement.lang || "en";
const INLINE = document.getElementById("page-messages");
const MESSAGES = LANG === "en" ? {}
  : INLINE ? JSON.parse(INLINE.textContent)
    : await fetch(`/static/i18n/${LANG}.json`).then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, key) => String(values[key]));
const PLURALS = new Intl.PluralRules(LANG);

// A message in the page's language, with {name} placeholders filled in.
export function t(message, values = {}) {
  const found = MESSAGES[message];
  return fill(typeof found === "string" && found ? found : message, values);
}

// A message with a count: the catalogue holds one form per plural category of the language
// ({"one": …, "few": …, "many": …, "other": …}); {count} is filled in with the number.
export function tn(singular, plural, count, values = {}) {
  const forms = MESSAGES[singular];
  const all = { count, ...values };
  if (forms && typeof forms === "object") return fill(forms[PLURALS.select(count)] || forms.other || plural, all);
  return fill(count === 1 ? singular : plural, all);
}

// A sentence from the server in the page's language: the catalogue's own entry, else (sentences with values
// in them, such as "no question 12 in this room") a template's translation from sentences.js, which is
// loaded the first time one comes; English pages show the sentence as sent.
export async function serverText(text) {
  if (LANG === "en" || !text) return text;
  if (has(text)) return MESSAGES[text];
  const { translateSentence } = await import("/static/sentences.js");
  return translateSentence(text);
}

// Whether the page's catalogue has a message (sentences.js asks).
export function has(message) {
  return typeof MESSAGES[message] === "string" && MESSAGES[message] !== "";
}

// The server's errors come in English with a code (realtime/room.py, server/rooms): shown in the page's
// language where the catalogue has the sentence or its template, else as sent.
export async function errorText(message) {
  if (message.code === "rate_limited" && message.retry_after_s != null) {
    return t("Too fast; try again in {seconds} s.", { seconds: Math.max(1, Math.ceil(message.retry_after_s)) });
  }
  return serverText(message.message || "");
}

// Close codes after which reconnecting cannot help.
export const FINAL_CLOSES = new Map([
  [1008, t("This page's origin is not allowed.")],
  [4401, t("Please sign in again.")],
  [4403, t("You cannot enter this room.")],
  [4404, t("This session does not exist.")],
  [4429, t("Too many open tabs for this room; close one and reload.")],
]);

// One room socket: hello, or resume after a dropped connection (with backoff), a heartbeat, and events
// delivered once each in order. With gaps (the lite socket leaves out what its page does not show), a
// jump in seq is expected; without, a gap closes the socket so that the resume fills it.
export class RoomSocket {
  constructor({ url, refPrefix = "r", gaps = false, onWelcome, onResumed, onEvent, onOther = () => {}, onConnection, onError }) {
    Object.assign(this, { url, refPrefix, gaps, onWelcome, onResumed, onEvent, onOther, onConnection, onError });
    this.epoch = null;
    this.seq = 0;
    this.socket = null;
    this.refs = 0;
    this.retry = 0;
    this.pinger = null;
  }

  get open() {
    return Boolean(this.socket) && this.socket.readyState === WebSocket.OPEN;
  }

  connect(fresh = false) {
    if (fresh) this.epoch = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${this.url()}`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify(this.epoch ? { type: "resume", v: 1, epoch: this.epoch, last_seq: this.seq } : { type: "hello", v: 1 }));
    });
    socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      clearInterval(this.pinger);
      if (this.socket !== socket) return;
      const final = FINAL_CLOSES.get(event.code);
      if (final) {
        this.onConnection(`${t("Disconnected:")} ${final}${event.reason ? ` (${event.reason})` : ""}`);
        return;
      }
      const delay = Math.min(10000, 500 * 2 ** this.retry) * (0.5 + Math.random() / 2);
      this.retry += 1;
      this.onConnection(t("Reconnecting…"));
      setTimeout(() => this.connect(), delay);
    });
  }

  // Starts afresh (a new snapshot), as when the lite page's caption track changes.
  restart() {
    const old = this.socket;
    this.socket = null;
    if (old) old.close();
    this.connect(true);
  }

  ready() {
    this.retry = 0;
    this.onConnection("");
    clearInterval(this.pinger);
    // Heartbeat: the server closes connections silent for 60 s.
    this.pinger = setInterval(() => this.sendRaw({ type: "ping" }), 20000);
  }

  receive(message) {
    switch (message.type) {
      case "welcome":
        this.epoch = message.epoch;
        this.seq = message.seq;
        this.ready();
        this.onWelcome(message);
        break;
      case "resumed":
        this.epoch = message.epoch;
        this.ready();
        this.onResumed(message);
        break;
      case "event":
        if (message.epoch !== this.epoch || message.seq <= this.seq) return; // duplicate or stale
        if (!this.gaps && message.seq !== this.seq + 1) { this.socket.close(); return; } // a gap: resume
        this.seq = message.seq;
        if (message.kind !== "skip") this.onEvent(message.kind, message.data);
        break;
      case "error":
        errorText(message).then((text) => this.onError(text));
        break;
      default:
        this.onOther(message);
    }
  }

  // A request: carries a ref, which the server's ack or error answers.
  send(message) {
    if (!this.open) {
      this.onError(t("Not connected; your action was not sent."));
      return;
    }
    this.refs += 1;
    this.socket.send(JSON.stringify({ ...message, ref: `${this.refPrefix}${this.refs}` }));
  }

  // Signaling and pings carry no ref.
  sendRaw(message) {
    if (this.open) this.socket.send(JSON.stringify(message));
  }
}

// An error line that hides itself after a while.
export function errorBox(box) {
  let timer = null;
  return (text) => {
    box.textContent = text;
    box.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(() => { box.hidden = true; }, 6000);
  };
}
