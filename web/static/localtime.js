// Shows programme times in the viewer's own time zone, and passes that zone to the day filter.
// Pages are complete without this script: the server renders times in the forum's time zone.

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

// In the page's language (server/i18n.py), which the browser's own may differ from.
const language = document.documentElement.lang || undefined;
const dateTime = new Intl.DateTimeFormat(language, {
  weekday: "short", day: "2-digit", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
});
const timeOnly = new Intl.DateTimeFormat(language, { hour: "2-digit", minute: "2-digit" });

function localise() {
  for (const el of document.querySelectorAll("time[data-local]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    el.textContent = (el.dataset.local === "time" ? timeOnly : dateTime).format(when);
    el.title = when.toISOString();
  }
  for (const el of document.querySelectorAll("[data-local-zone]")) {
    el.textContent = `(${zone})`;
  }
  for (const el of document.querySelectorAll("[data-local-note]")) {
    // The sentence comes translated from the page (its data-local-note), with {zone} to fill in.
    el.textContent = (el.dataset.localNote || "Times are shown in your time zone, {zone}.").replace("{zone}", zone);
  }
  for (const input of document.querySelectorAll("input[data-viewer-tz]")) {
    if (!input.value) input.value = zone;
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", localise);
} else {
  localise();
}
