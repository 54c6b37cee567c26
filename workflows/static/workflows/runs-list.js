// The runs list page: the live table (runs.js), a live total for the page's filters, and bulk cancel / retry of
// the selected runs. The total is asked again (throttled) whenever a run appears or changes status on the
// websocket, since only the server knows which runs match the filters (a search over inputs, several statuses).
import { onSummaries } from "./runs.js";
import { csrfToken, escapeHtml, throttle, toast } from "./ui.js";

const table = document.querySelector("table[data-live-runs][data-selectable]");
const form = document.getElementById("bulk-form");
const total = document.querySelector("[data-live-count]");

// --- live total ------------------------------------------------------------------------------------------------

if (table && total) {
  const statuses = new Map(); // run id -> last status seen
  const refresh = throttle(async () => {
    const params = new URLSearchParams(window.location.search);
    params.delete("cursor");
    params.set("fragment", "count");
    try {
      const response = await fetch(`${window.location.pathname}?${params}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const data = await response.json();
      const text = `${data.capped ? "more than " : ""}${data.count.toLocaleString("en")}`;
      if (total.textContent !== text) total.textContent = text;
    } catch {
      // offline for a moment: the next change asks again
    }
  }, 1000);
  onSummaries(table.dataset.liveRuns, (s) => {
    const before = statuses.get(s.id);
    statuses.set(s.id, s.status);
    if (before !== s.status) refresh();
  });
}

// --- selection and bulk actions ----------------------------------------------------------------------------------

if (table && form) {
  const count = form.querySelector("[data-bulk-count]");
  const results = document.querySelector("[data-bulk-results]");
  const buttons = form.querySelectorAll("[data-bulk-action]");
  const all = table.querySelector("[data-select-all]");
  const boxes = () => [...table.querySelectorAll("input[name=run]")];
  const update = () => {
    const chosen = boxes().filter((b) => b.checked).length;
    count.textContent = chosen ? `${chosen} selected` : "No run selected";
    for (const b of buttons) b.disabled = !chosen;
    if (all) {
      all.checked = chosen > 0 && chosen === boxes().length;
      all.indeterminate = chosen > 0 && chosen < boxes().length;
    }
  };
  all?.addEventListener("change", () => {
    for (const b of boxes()) b.checked = all.checked;
    update();
  });
  table.addEventListener("change", (event) => {
    if (event.target.name === "run") update();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    data.set("action", event.submitter?.value || "cancel");
    for (const b of boxes()) if (b.checked) data.append("run", b.value);
    for (const b of buttons) b.disabled = true;
    try {
      const response = await fetch(form.getAttribute("action"), { // not form.action: a button is named "action"
        method: "POST",
        body: data,
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
        credentials: "same-origin",
      });
      const body = await response.json();
      results.hidden = false;
      results.className = `bulk-results alert ${body.ok ? "alert-ok" : "alert-error"}`;
      const items = (body.results || [])
        .map((r) => `<li data-run-result="${r.run}" data-ok="${r.ok}">${escapeHtml(r.message)}</li>`)
        .join("");
      results.innerHTML = `<p>${escapeHtml(body.message)}</p>${items ? `<ul>${items}</ul>` : ""}`;
      if (response.ok) for (const b of boxes()) b.checked = false;
    } catch {
      toast("Could not reach the server: nothing was changed on this page.", "error");
    }
    update();
  });
  update();
}
