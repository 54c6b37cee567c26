// The run page's event history (like Temporal's): every journal event in seq order with its data, its time from
// the run's creation and who acted; filterable by kind, step and log level. The latest page comes from the
// history endpoint (web/history.py), new events from the run's websocket stream (run.js hands them over), older
// ones on "Load earlier". At most MAX_ROWS rows are kept: a long run's history stays bounded.
import { clockTime, escapeHtml, fmtDuration, parseTime } from "./ui.js";

const MAX_ROWS = 1000;
const LEVELS = { debug: 10, info: 20, warning: 30, error: 40 };

/** "+1.25 s", "+2 min 3 s": a time from the run's creation. */
export function fmtOffset(seconds) {
  if (seconds < 0) return `−${fmtDuration(-seconds) || "0 s"}`;
  return `+${fmtDuration(seconds) || "0 s"}`;
}

function who(by) {
  return by ? ` by ${by}` : "";
}

function fields(data, skip) {
  const parts = [];
  for (const [k, v] of Object.entries(data ?? {})) {
    if (skip.includes(k)) continue;
    parts.push(`${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  }
  return parts.join(" ");
}

/** One line saying what an event means (its data is shown in full below it). */
export function describe(event) {
  const d = event.data ?? {};
  const by = event.by ?? d.by;
  switch (event.kind) {
    case "run_created":
      return d.restarted_from ? `run created: restarted from #${d.restarted_from}${who(by)}` : `run created${who(by)}`;
    case "run_canceled":
      return `run canceled${who(by)}${d.reason ? ` (${d.reason})` : ""}`;
    case "run_failed":
      return `run failed: ${d.error?.type ?? ""} ${d.error?.message ?? ""}`.trim();
    case "steps_reused":
      return `${d.count} step(s) reused from #${d.from_run}, with their original times`;
    case "step_retrying":
      return `failed; waiting for retry until ${clockTime(parseTime(d.due_at))} (attempt ${d.attempt})`;
    case "step_resumed": {
      const approved = d.data && typeof d.data === "object" ? d.data.approved : undefined;
      if (approved === true) return `approved${who(by)}`;
      if (approved === false) return `rejected${who(by)}`;
      return `resumed${who(by)}`;
    }
    case "event_received":
      return `event “${d.event}” received${who(by)}`;
    case "step_log":
      return d.message ?? "";
    case "step_failed":
      return `failed: ${d.error?.type ?? ""} ${d.error?.message ?? ""}`.trim();
    default:
      if (event.kind.startsWith("step_") && event.step) return event.kind.slice(5).replaceAll("_", " "); // the step is beside it
      return event.kind.replaceAll("_", " ");
  }
}

export function createHistory({ url, createdAt, labelOf = (p) => p }) {
  const root = document.getElementById("history");
  const list = document.getElementById("history-list");
  const earlierButton = document.getElementById("history-earlier");
  const filters = {
    kind: document.getElementById("history-kind"),
    step: document.getElementById("history-step"),
    level: document.getElementById("history-level"),
  };
  const seen = { kind: new Set(), step: new Set() };
  let oldest = null; // the lowest seq held
  let newest = 0; // the highest seq held
  let earlier = false;
  let loaded = false;
  const pending = []; // live events that arrived before the first page

  function option(select, set, value, text = value) {
    if (!value || set.has(value)) return;
    set.add(value);
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    select.append(o);
  }

  function row(e) {
    const d = e.data ?? {};
    const li = document.createElement("li");
    const level = e.kind === "step_log" ? (d.level ?? "info") : "";
    li.className = `history-row kind-${e.kind.split("_")[0]}${level ? ` level-${level}` : ""}`;
    Object.assign(li.dataset, { seq: e.seq, kind: e.kind, step: e.step ?? "", level });
    const at = parseTime(e.at);
    const t = e.t ?? (at - createdAt) / 1000;
    const skip = e.kind === "step_log" ? ["message", "level", "attempt"] : [];
    const extra = e.kind === "step_log" ? fields(d, skip) : "";
    const hasData = Object.keys(d).length > 0;
    li.innerHTML =
      `<span class="history-t mono" title="${escapeHtml(at ? new Date(at).toISOString() : "")}">${escapeHtml(fmtOffset(t))}</span>` +
      `<span class="history-kind mono">${escapeHtml(e.kind)}</span>` +
      (level ? `<span class="history-level level-${escapeHtml(level)}">${escapeHtml(level)}</span>` : "") +
      (e.step ? `<button type="button" class="linklike mono step-ref" data-select-step="${escapeHtml(e.step)}">${escapeHtml(labelOf(e.step))}</button>` : "") +
      `<span class="history-text">${escapeHtml(describe(e))}</span>` +
      (extra ? `<span class="history-fields mono small">${escapeHtml(extra)}</span>` : "") +
      (hasData ? `<details class="history-data"><summary>data</summary><pre class="json">${escapeHtml(JSON.stringify(d, null, 2))}</pre></details>` : "");
    option(filters.kind, seen.kind, e.kind);
    if (e.step) option(filters.step, seen.step, e.step, labelOf(e.step));
    li.hidden = !matches(li);
    return li;
  }

  function matches(li) {
    const { kind, step, level } = li.dataset;
    if (filters.kind.value && kind !== filters.kind.value) return false;
    if (filters.step.value && step !== filters.step.value) return false;
    if (filters.level.value) {
      if (kind !== "step_log") return false; // a level filter is about log lines
      if ((LEVELS[level] ?? 20) < LEVELS[filters.level.value]) return false;
    }
    return true;
  }

  function refilter() {
    for (const li of list.children) li.hidden = !matches(li);
    root.querySelector("[data-history-empty]").hidden = [...list.children].some((li) => !li.hidden);
  }

  function trim() {
    while (list.children.length > MAX_ROWS) {
      list.firstElementChild.remove();
      earlier = true;
    }
    oldest = list.firstElementChild ? Number(list.firstElementChild.dataset.seq) : oldest;
    earlierButton.hidden = !earlier;
  }

  function append(e) {
    if (e.seq <= newest) return; // held already
    newest = e.seq;
    oldest ??= e.seq;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(row(e));
    trim();
    if (nearBottom) list.scrollTop = list.scrollHeight;
    refilter();
  }

  async function load(before) {
    const query = before ? `?before=${before}` : "";
    const response = await fetch(url + query, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`${response.status}`);
    return response.json();
  }

  async function start() {
    try {
      const page = await load(null);
      for (const e of page.events) append(e);
      earlier = page.earlier;
      oldest = page.events.length ? page.events[0].seq : null;
    } catch {
      root.querySelector("[data-history-empty]").textContent = "Could not load the history; reload the page.";
    }
    loaded = true;
    for (const e of pending.splice(0)) append(e);
    earlierButton.hidden = !earlier;
    list.scrollTop = list.scrollHeight;
    root.dataset.loaded = "1";
    refilter();
  }

  earlierButton.addEventListener("click", async () => {
    if (oldest === null) return;
    earlierButton.disabled = true;
    try {
      const page = await load(oldest);
      const rows = page.events.filter((e) => e.seq < oldest).map(row);
      list.prepend(...rows);
      if (rows.length) oldest = Number(rows[0].dataset.seq);
      earlier = page.earlier;
      earlierButton.hidden = !earlier;
      refilter();
    } finally {
      earlierButton.disabled = false;
    }
  });
  for (const select of Object.values(filters)) select.addEventListener("change", refilter);
  start();

  return {
    /** A live event of the run (in seq order, each once: the live client sees to that). */
    event(e) {
      const live = { ...e, by: e.data?.by ?? null };
      if (!loaded) pending.push(live);
      else append(live);
    },
  };
}
