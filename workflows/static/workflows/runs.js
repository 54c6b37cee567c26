// Live lists of runs: every table[data-live-runs] follows its topic ("runs" or "workflow:<name>"), updating the
// status, progress and duration of the rows it shows and, on a first page, adding new runs at the top. The home
// page's workflow cards refresh their statistics when runs start or finish.
import { badge, throttle, escapeHtml, fmtDuration, fmtPercent, live, pageUrl, parseTime, relTime, TERMINAL, tick } from "./ui.js";

const listeners = new Map(); // topic -> Set of fn(summary)
const latest = new Map(); // run id -> seq of the newest summary applied

/** Call fn(summary) for the snapshot and every change of a summary topic (one subscription per topic). */
export function onSummaries(topic, fn) {
  if (!listeners.has(topic)) {
    listeners.set(topic, new Set());
    const deliver = (s) => {
      for (const f of listeners.get(topic)) f(s);
    };
    live().subscribe(topic, {
      onSnapshot: (runs) => runs.slice().reverse().forEach(deliver), // oldest first: new rows stack up in order
      onRun: deliver,
    });
  }
  listeners.get(topic).add(fn);
}

function durationOf(s) {
  const start = parseTime(s.started_at);
  const end = parseTime(s.finished_at);
  return start && end ? (end - start) / 1000 : null;
}

function progressHtml(id, fraction) {
  const pct = Math.round((fraction ?? 0) * 100);
  return (
    `<div class="progress" role="progressbar" aria-label="Progress of run ${id}" aria-valuemin="0" ` +
    `aria-valuemax="100" aria-valuenow="${pct}"><span style="width: ${pct}%"></span></div>`
  );
}

/** The error cell's content (as _run_row.html writes it): the type, the message cut short, all of it on hover. */
function errorHtml(error) {
  if (!error) return "";
  const short = error.message.length > 80 ? `${error.message.slice(0, 79)}…` : error.message;
  return (
    `<span class="run-error" title="${escapeHtml(`${error.type}: ${error.message}`)}">` +
    `<span class="mono">${escapeHtml(error.type)}</span> ${escapeHtml(short)}</span>`
  );
}

function rowHtml(s, hideWorkflow, selectable) {
  const created = parseTime(s.created_at);
  const workflow = hideWorkflow
    ? ""
    : `<td data-label="Workflow"><a href="${escapeHtml(pageUrl("workflow", { name: s.workflow }))}">${escapeHtml(s.workflow)}</a></td>`;
  const select = selectable
    ? `<td class="col-select"><input type="checkbox" name="run" value="${s.id}" form="bulk-form" aria-label="Select run ${s.id}"></td>`
    : "";
  return (
    `${select}<td data-label="Run"><a class="run-link mono" href="${escapeHtml(pageUrl("run", { id: s.id }))}">#${s.id}</a></td>${workflow}` +
    `<td data-cell="status" data-label="Status">${badge(s.status)}</td>` +
    `<td data-cell="progress" data-label="Progress" class="col-progress">${progressHtml(s.id, s.progress)}</td>` +
    `<td data-cell="error" data-label="Error" class="col-error">${errorHtml(s.error)}</td>` +
    `<td data-cell="created" data-label="Created"><time datetime="${escapeHtml(s.created_at)}" data-relative>${created ? relTime(created) : ""}</time></td>` +
    `<td class="num mono" data-cell="tokens" data-label="Tokens"></td>` +
    `<td class="num mono" data-cell="duration" data-label="Duration"></td>`
  );
}

function applyToRow(row, s) {
  row.dataset.status = s.status;
  const status = row.querySelector("[data-cell=status]");
  if (status && !status.querySelector(`.status-${CSS.escape(s.status)}`)) status.innerHTML = badge(s.status);
  const bar = row.querySelector("[data-cell=progress] .progress");
  if (bar && s.progress !== null && s.progress !== undefined) {
    const pct = Math.round(s.progress * 100);
    bar.setAttribute("aria-valuenow", String(pct));
    bar.firstElementChild.style.width = `${pct}%`;
  }
  const error = row.querySelector("[data-cell=error]");
  if (error && s.error !== undefined) {
    const html = errorHtml(s.error);
    if (error.innerHTML !== html) error.innerHTML = html;
  }
  const duration = row.querySelector("[data-cell=duration]");
  if (duration) {
    if (s.started_at && !s.finished_at && !TERMINAL.has(s.status)) {
      duration.dataset.since = s.started_at;
    } else {
      delete duration.dataset.since;
      duration.textContent = fmtDuration(durationOf(s));
    }
  }
}

function followTable(table) {
  const tbody = table.tBodies[0];
  const insert = table.dataset.insert === "1";
  const hideWorkflow = table.dataset.hideWorkflow === "1";
  const selectable = table.dataset.selectable === "1";
  const limit = Number(table.dataset.limit || 50);
  const empty = tbody.querySelector(".empty-row");
  onSummaries(table.dataset.liveRuns, (s) => {
    let row = tbody.querySelector(`tr[data-run="${s.id}"]`);
    if (!row) {
      if (!insert) return;
      const top = tbody.querySelector("tr[data-run]");
      const topCreated = top ? parseTime(top.querySelector("time")?.getAttribute("datetime")) : null;
      const created = parseTime(s.created_at);
      if (top && topCreated && created && created < topCreated) return; // older than what the page shows
      if (top && Number(top.dataset.run) > s.id && created === topCreated) return;
      row = document.createElement("tr");
      row.dataset.run = String(s.id);
      row.innerHTML = rowHtml(s, hideWorkflow, selectable);
      row.classList.add("row-new");
      tbody.insertBefore(row, tbody.firstChild);
      const rows = tbody.querySelectorAll("tr[data-run]");
      for (let i = limit; i < rows.length; i++) rows[i].remove();
      if (empty) empty.hidden = true;
    }
    applyToRow(row, s);
    tick(row);
  });
}

// --- home: workflow cards' statistics --------------------------------------------------------------------------

function followCards(container) {
  const refresh = throttle(async () => {
    let data;
    try {
      const response = await fetch(pageUrl("apiWorkflows"), { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch {
      return;
    }
    for (const wf of data.workflows) {
      const card = container.querySelector(`[data-workflow="${CSS.escape(wf.name)}"]`);
      if (!card) continue;
      const st = wf.stats;
      const set = (name, html) => {
        const el = card.querySelector(`[data-stat="${name}"]`);
        if (el && el.innerHTML !== html) el.innerHTML = html;
      };
      set("runs_24h", String(st.runs_24h));
      set("success_rate", fmtPercent(st.success_rate));
      set("p50_seconds", st.p50_seconds === null ? "—" : fmtDuration(st.p50_seconds));
      if (st.last_run) {
        const t = parseTime(st.last_run.created_at);
        set(
          "last_run",
          `<a href="${escapeHtml(pageUrl("run", { id: st.last_run.id }))}">${badge(st.last_run.status)}</a> ` +
            `<time datetime="${escapeHtml(st.last_run.created_at)}" data-relative>${t ? relTime(t) : ""}</time>`,
        );
      }
    }
  }, 1500);
  onSummaries("runs", (s) => {
    const seen = latest.get(s.id);
    const changed = seen === undefined || TERMINAL.has(s.status);
    latest.set(s.id, s.seq);
    if (changed && seen !== s.seq) refresh();
  });
}

for (const table of document.querySelectorAll("table[data-live-runs]")) followTable(table);
const cards = document.getElementById("wf-cards");
if (cards) followCards(cards);
const filter = document.getElementById("wf-filter");
filter?.addEventListener("input", () => {
  const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const card of cards.children) {
    const text = card.textContent.toLowerCase();
    card.hidden = !words.every((w) => text.includes(w));
  }
});
