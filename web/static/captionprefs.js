// Caption display settings (text size, colours, position), remembered per person in this browser as the
// caption track is. The controls are in the page (labelled and translated there); this module applies
// the choice to the captions box as data attributes that site.css styles.

const SETTINGS = { size: ["normal", "large", "larger"], contrast: ["dark", "light", "yellow"], position: ["page", "bottom", "top"] };

export function captionSettings(box, personId) {
  const key = `forumlive.captionDisplay.${personId}`;
  let chosen = {};
  try { chosen = JSON.parse(localStorage.getItem(key) || "{}"); } catch { chosen = {}; }
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
    });
  }
}
