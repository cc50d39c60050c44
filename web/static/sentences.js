// The server's sentences with values in them (realtime/room.py, realtime/cafe_room.py, server/rooms), as
// templates whose {name} stands for a value: a sentence that matches one is shown through the template's
// translation with its values put back; `words` translates values that are words (a room's state).
// common.js loads this module the first time such a sentence comes on a page that is not in English.
// tests/server/test_i18n.py checks that every such sentence the server sends has its template here
// (the socket's protocol and media errors, which only a broken client meets, stay English) and that every
// catalogue translates each template.

import { has, t } from "/static/common.js";

const ROOM_STATES = { closed: t("Doors closed"), open: t("Doors open"), live: t("Live"), ended: t("Ended") };
function sentence(template, words = {}) {
  const names = [];
  const source = template.split(/(\{\w+\})/).map((part) => {
    const name = /^\{(\w+)\}$/.exec(part);
    if (!name) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    names.push(name[1]);
    return "(.+?)";
  }).join("");
  return { template, names, words, pattern: new RegExp(`^${source}$`, "s") };
}
const SENTENCES = [
  sentence("no chat message {message_id} in this room"),
  sentence("no question {question_id} in this room"),
  sentence("no poll {poll_id} in this room"),
  sentence("slow mode: wait {wait} s before your next message"),
  sentence("the poll is draft"),
  sentence("the poll is open"),
  sentence("the poll is closed"),
  sentence("a {state} room cannot become {target}", { state: ROOM_STATES, target: ROOM_STATES }),
  sentence("at most {max_connections_per_person} connections per person"),
  sentence("the room could not read this command: {reason}"),
  sentence("no table {table_id} in this café"),
  sentence("table {id} ({topic}) is full"),
  sentence("seat people between rounds, not during one"),
  sentence("rotate between rounds, not during one"),
  sentence("start a round between rounds, not during one"),
  sentence("cannot seat everyone: {count} people but only {seats} seats"),
  sentence("cannot rotate: {count} people but only {seats} seats"),
  sentence("the round would have under {min_left_s} s left; end it instead"),
  sentence("only people at table {table_id} may add to its notes"),
  sentence("only people at table {table_id} may change its notes"),
  sentence("no note {note_id} in this café"),
  sentence("round {round} has ended"),
  sentence("no round has started"),
];

// A sentence's translation through the first template it matches (and the catalogue has), else as sent.
export function translateSentence(text) {
  for (const { template, names, words, pattern } of SENTENCES) {
    const found = pattern.exec(text);
    if (!found || !has(template)) continue;
    const values = Object.fromEntries(names.map((name, i) => [name, (words[name] || {})[found[i + 1]] || found[i + 1]]));
    return t(template, values);
  }
  return text;
}
