// The organizers' live dashboard: polls /api/forums/{id}/live and redraws the figures (text only).

const root = document.getElementById("dashboard");
const forumId = Number(root.dataset.forumId);
import { $, LANG, t } from "/static/common.js";

const number = new Intl.NumberFormat(LANG);

function cell(text, header = false) {
  const node = document.createElement(header ? "th" : "td");
  if (header) node.scope = "row";
  node.textContent = text;
  return node;
}

async function refresh() {
  try {
    const response = await fetch(`/api/forums/${forumId}/live`, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(t("the server answered {status}", { status: response.status }));
    const data = await response.json();
    $("present-now").textContent = number.format(data.present_now);
    $("today-attendance").textContent = number.format(data.today.attendance);
    $("today-unique").textContent = number.format(data.today.unique_participants);
    $("today-countries").textContent = number.format(data.today.countries_engaged);
    $("today-sessions").textContent = number.format(data.today.sessions);
    const rows = data.sessions_live.map((s) => {
      const row = document.createElement("tr");
      const title = cell("", true);
      const link = document.createElement("a");
      link.href = `/sessions/${s.id}/room`;
      link.textContent = s.title;
      title.append(link);
      row.append(title, cell(number.format(s.present)), cell(number.format(s.attendees_today)), cell(number.format(s.peak)));
      return row;
    });
    if (!rows.length) {
      const row = document.createElement("tr");
      const empty = cell(t("No room is open right now."));
      empty.colSpan = 4;
      empty.className = "hint empty";
      row.append(empty);
      rows.push(row);
    }
    $("live-sessions").replaceChildren(...rows);
    $("updated").textContent = t("updated {time}", { time: new Date().toLocaleTimeString(LANG) });
    $("dashboard-error").hidden = true;
  } catch (error) {
    $("dashboard-error").textContent = t("Could not refresh: {reason}. Trying again.", { reason: error.message });
    $("dashboard-error").hidden = false;
  }
}

refresh();
setInterval(refresh, 5000);
