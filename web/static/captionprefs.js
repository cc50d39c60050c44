// Caption display settings (text size, colours, position), kept in the person's profile so they follow
// them across devices (POST /profile/caption-display; the page brings the saved ones in the settings'
// data-saved), and in this browser too, so a change shows at once and survives a failed save. The
// controls are in the page (labelled and translated there); this module applies the choice to the
// captions box as data attributes that site.css styles.

const SETTINGS = { size: ["normal", "large", "larger"], contrast: ["dark", "light", "yellow"], position: ["page", "bottom", "top"] };

function parse(text) {
  try {
    const value = JSON.parse(text || "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

function save(details, chosen) {
  if (!details || !details.dataset.csrf) return;
  fetch("/profile/caption-display", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": details.dataset.csrf },
    body: JSON.stringify(chosen),
  }).catch(() => { /* offline: this browser keeps the choice */ });
}

export function captionSettings(box, personId) {
  const key = `forumlive.captionDisplay.${personId}`;
  const details = box.querySelector(".caption-settings");
  let stored = {};
  try { stored = parse(localStorage.getItem(key)); } catch { stored = {}; }
  // The profile's settings win: they are what the person chose last, on whichever device.
  const saved = parse(details && details.dataset.saved);
  const chosen = { ...stored, ...saved };
  // Settings chosen in this browser before the profile kept any: saved to the profile once.
  const local = Object.fromEntries(Object.entries(stored).filter(([k, v]) => SETTINGS[k] && SETTINGS[k].includes(v)));
  if (!Object.keys(saved).length && Object.keys(local).length) save(details, local);
  for (const [name, values] of Object.entries(SETTINGS)) {
    const select = document.getElementById(`caption-${name}`);
    if (!select) continue;
    const value = values.includes(chosen[name]) ? chosen[name] : values[0];
    select.value = value;
    box.dataset[name] = value;
    select.addEventListener("change", () => {
      box.dataset[name] = select.value;
      chosen[name] = select.value;
      try { localStorage.setItem(key, JSON.stringify(chosen)); } catch { /* private mode: this page only */ }
      save(details, { [name]: select.value });
    });
  }
}
