// The run page, live: the graph's nodes coloured by status (foreach progress, loop iteration), the timeline of
// every step attempt, the steps table, the logs, and the step panel follow the run's journal over the websocket
// from the seq the page was rendered at. The action forms and the run's input/output/related runs are server
// fragments, fetched again when the run's state changes.
import { liveConversation } from "./conversation.js";
import { createHistory } from "./history.js";
import { fetchValue, fmtBytes, valueRef } from "./live.js";
import { live, badge, clockTime, throttle, escapeHtml, fmtDuration, pageUrl, parseTime, STATUS_ICONS, TERMINAL, tick } from "./ui.js";

const DONE = new Set(["succeeded", "failed", "canceled", "skipped"]);
const FOREACH_PRECEDENCE = ["failed", "running", "suspended", "waiting", "queued", "pending", "canceled"];
const MAX_LOG_LINES = 2000;
const MAX_GANTT_ROWS = 400;

const data = JSON.parse(document.getElementById("run-data").textContent);
const page = document.getElementById("run-page");
const graphEl = document.getElementById("run-graph");
const runId = data.run.id;

const run = {
  status: data.run.status,
  createdAt: parseTime(data.run.created_at),
  startedAt: parseTime(data.run.started_at),
  finishedAt: parseTime(data.run.finished_at),
};
const attempts = new Map(); // "path|attempt" -> {path, attempt, status, block, kind, created, started, finished, error}
const latest = new Map(); // path -> its latest attempt
const pathsOf = new Map(); // node key -> Set of the paths that belong to it (a foreach's items, a loop's iterations)
const pathBlock = new Map(); // path -> block index
const foreach = new Map(); // node key -> {done, total}
const children = new Map(); // path -> child run id
const progress = new Map(Object.entries(data.progress ?? {})); // path -> {fraction, message} (ctx.progress)
const blockKinds = new Map(data.blocks.map((b) => [b.index, b.kind]));
const nodes = new Map(); // node key "block:id" -> <g>
for (const g of graphEl.querySelectorAll("g.node")) nodes.set(`${g.dataset.block}:${g.dataset.step}`, g);
let selected = null; // a step path, or "node:<key>" for a foreach node
const labels = data.labels ?? {}; // node ids the DSL made up ("sleep2") -> what people read ("sleep 1 s")
const reusedFrom = data.run.restarted_from; // the run a restart or retry reused steps from
let offline = false; // the websocket is down: numbers frozen, actions off (see "the connection" below)

/** A step path as people read it: a made-up node id replaced by its label, the item or iteration kept. */
export function labelOf(path) {
  const id = nodeIdOf(path);
  return labels[id] ? labels[id] + path.slice(id.length) : path;
}

export function nodeIdOf(path) {
  const cut = path.search(/[[#]/);
  return cut === -1 ? path : path.slice(0, cut);
}

// --- the model -------------------------------------------------------------------------------------------------

function blockOf(path) {
  if (pathBlock.has(path)) return pathBlock.get(path);
  const id = nodeIdOf(path);
  const candidates = [...nodes.values()].filter((g) => g.dataset.step === id).map((g) => Number(g.dataset.block));
  candidates.sort((a, b) => a - b);
  // a step id used in several blocks: the event belongs to the first of them that has not finished
  let block = candidates.find((b) => !["succeeded", "skipped"].includes(nodeState(`${b}:${id}`).status));
  if (block === undefined) block = candidates.at(-1) ?? -1;
  pathBlock.set(path, block);
  return block;
}

function keyOf(path) {
  return `${blockOf(path)}:${nodeIdOf(path)}`;
}

function attempt(path, n, at) {
  const number = n ?? latest.get(path)?.attempt ?? 1;
  const key = `${path}|${number}`;
  let a = attempts.get(key);
  if (!a) {
    a = { path, attempt: number, status: "pending", block: blockOf(path), created: at, started: null, finished: null, error: null };
    attempts.set(key, a);
  }
  const held = latest.get(path);
  if (!held || held.attempt <= number) latest.set(path, a);
  if (!held) {
    const key = `${a.block}:${nodeIdOf(path)}`;
    if (!pathsOf.has(key)) pathsOf.set(key, new Set());
    pathsOf.get(key).add(path);
  }
  return a;
}

for (const s of data.steps) {
  pathBlock.set(s.path, s.block);
  const a = attempt(s.path, s.attempt, parseTime(s.created_at));
  Object.assign(a, {
    status: s.status,
    kind: s.kind,
    started: parseTime(s.started_at),
    finished: parseTime(s.finished_at),
    error: s.error,
    index: s.index,
    reused: s.reused,
    due: s.attempt > 1 && s.due_at ? parseTime(s.due_at) : null, // a retry's backoff ends then
  });
}

function nodeState(key) {
  const [block] = key.split(":");
  const kind = blockKinds.get(Number(block));
  const rows = latestOf(key);
  if (!rows.length) return { status: "" };
  if (kind === "foreach") {
    const statuses = new Set(rows.map((r) => r.status));
    const done = rows.filter((r) => r.status === "succeeded").length;
    const counted = foreach.get(key);
    const total = Math.max(rows.length, counted?.total ?? 0);
    let status;
    if ([...statuses].every((s) => s === "succeeded" || s === "skipped") && done >= total) status = "succeeded";
    else status = FOREACH_PRECEDENCE.find((s) => statuses.has(s)) ?? "pending";
    return { status, done: Math.max(done, counted?.done ?? 0), total };
  }
  if (kind === "loop") {
    const last = rows.reduce((a, b) => ((b.index ?? iterationOf(b.path)) > (a.index ?? iterationOf(a.path)) ? b : a));
    return { status: last.status, iteration: last.index ?? iterationOf(last.path) };
  }
  const last = rows.reduce((a, b) => ((b.created ?? 0) >= (a.created ?? 0) ? b : a));
  return { status: last.status, attempt: last.attempt, progress: progress.get(last.path) };
}

function latestOf(key) {
  return [...(pathsOf.get(key) ?? [])].map((p) => latest.get(p));
}

function iterationOf(path) {
  const m = path.match(/#(\d+)$/);
  return m ? Number(m[1]) : 1;
}

// --- applying events -------------------------------------------------------------------------------------------

const RUN_STATUS_EVENTS = new Set(["run_running", "run_waiting", "run_suspended", "run_pending", "run_succeeded", "run_failed", "run_canceled"]);
const REFRESH_EVENTS = new Set([
  ...RUN_STATUS_EVENTS, "run_started", "step_suspended", "step_resumed", "event_received", "state_changed", "step_waiting",
  "run_debounced", "debounce_fired", // a debounced run's new input and start time, in its summary
]);

function apply(event) {
  const { kind, step, data: d = {} } = event;
  const at = parseTime(event.at) ?? Date.now();
  if (kind === "run_started") {
    run.status = "running";
    run.startedAt ??= at;
  } else if (RUN_STATUS_EVENTS.has(kind)) {
    run.status = kind.slice(4);
    if (TERMINAL.has(run.status)) {
      run.finishedAt = at;
      run.startedAt ??= at;
    }
  }
  if (step && kind.startsWith("step_")) {
    const what = kind.slice(5);
    if (what === "log") {
      if (event.seq > lastLogSeq) addLog({ step, message: d.message ?? "", at });
    } else if (what === "progress") {
      progress.set(step, { fraction: d.fraction, message: d.message ?? "" });
    } else if (what === "retrying") {
      const next = attempt(step, d.attempt, at);
      next.status = "pending";
      next.due = parseTime(d.due_at);
    } else {
      const a = attempt(step, d.attempt, at);
      if (d.kind) a.kind = d.kind;
      if (what === "resumed" || what === "pending") {
        a.status = "pending";
        if (what === "resumed") a.started = a.finished = null;
      } else {
        a.status = what;
        if (what === "running") {
          // a nested workflow's step mirrors its child run (running again after a sleep or wait): it started at
          // its first "running", as the server's started_at says; a step's own attempt starts at its claim
          if (!(d.child_run && a.started)) a.started = at;
          if (d.child_run) children.set(step, d.child_run);
        }
        if (what === "waiting") a.started ??= at;
        if (DONE.has(what)) {
          a.finished = at;
          a.started ??= what === "skipped" ? null : at;
        }
        if (what === "failed") a.error = d.error ?? null;
        if (d.child_run) children.set(step, d.child_run);
      }
    }
    paintNode(keyOf(step));
  }
  if (kind === "foreach_progress" && step) {
    const key = `${blockOf(step)}:${nodeIdOf(step)}`;
    foreach.set(key, { done: d.completed, total: d.total });
    paintNode(key);
  }
  if (REFRESH_EVENTS.has(kind)) refreshFragments();
  if (selected && step && (selected === step || selected === `node:${keyOf(step)}`)) refreshPanel();
  paintRun();
  scheduleRender();
}

// --- painting --------------------------------------------------------------------------------------------------

function paintNode(key) {
  const g = nodes.get(key);
  if (!g) return;
  const state = nodeState(key);
  if (g.dataset.status !== state.status) g.dataset.status = state.status; // the colour, via CSS
  const icon = g.querySelector(".node-icon");
  if (icon) icon.textContent = STATUS_ICONS[state.status] ?? "";
  g.setAttribute("aria-label", `${g.dataset.label ?? labelOf(g.dataset.step)}: ${state.status || "not started"}`);
  const iter = g.querySelector(".node-iter");
  if (iter && state.iteration) iter.textContent = `#${state.iteration}`;
  const count = g.querySelector(".node-count");
  const p = state.progress;
  if (count && p && g.dataset.kind !== "foreach") {
    // a step reporting ctx.progress(): a bar while it runs
    const running = state.status === "running";
    if (running) g.dataset.progress = String(p.fraction);
    else delete g.dataset.progress;
    count.textContent = running ? `${Math.round(p.fraction * 100)}%` : "";
    const bar = g.querySelector(".node-bar");
    bar.setAttribute("width", (Number(bar.dataset.track) * p.fraction).toFixed(1));
  }
  if (count && state.total) {
    count.textContent = `${state.done}/${state.total}`;
    const bar = g.querySelector(".node-bar");
    bar.setAttribute("width", ((Number(bar.dataset.track) * state.done) / state.total).toFixed(1));
  }
}

function runProgress() {
  if (run.status === "succeeded") return 1;
  if (!data.blocks.length) return 0;
  let done = 0;
  for (const b of data.blocks) {
    const states = b.ids.map((id) => nodeState(`${b.index}:${id}`).status);
    if (states.some((s) => s === "succeeded") && states.every((s) => s === "succeeded" || s === "skipped")) done += 1;
  }
  return done / data.blocks.length;
}

function paintRun() {
  if (page.dataset.status !== run.status) {
    page.dataset.status = run.status;
    document.getElementById("run-status").innerHTML = badge(run.status);
  }
  const bar = document.getElementById("run-progress");
  const pct = Math.round(runProgress() * 100);
  bar.setAttribute("aria-valuenow", String(pct));
  bar.firstElementChild.style.width = `${pct}%`;
  const duration = document.getElementById("run-duration");
  if (offline) {
    delete duration.dataset.since; // frozen where it was: the page cannot know the run's time while offline
  } else if (run.startedAt && !run.finishedAt) {
    if (!duration.dataset.since) {
      duration.dataset.since = new Date(run.startedAt).toISOString();
      tick(duration.parentElement);
    }
  } else {
    delete duration.dataset.since;
    duration.textContent = run.startedAt && run.finishedAt ? fmtDuration((run.finishedAt - run.startedAt) / 1000) : "—";
  }
}

let renderTimer = null;
function scheduleRender() {
  if (renderTimer) return;
  renderTimer = setTimeout(() => {
    renderTimer = null;
    renderGantt();
    renderSteps();
  }, 60);
}

function span(a) {
  const now = Date.now();
  const open = !a.finished && !DONE.has(a.status);
  const end = a.finished ?? (open ? now : a.started ?? a.created);
  return { start: a.created ?? a.started ?? run.createdAt, run: a.started, end };
}

function renderGantt() {
  const el = document.getElementById("gantt");
  const rows = [...attempts.values()].filter((a) => a.status !== "skipped");
  rows.sort((a, b) => a.block - b.block || (a.created ?? 0) - (b.created ?? 0) || byPath(a, b) || a.attempt - b.attempt);
  if (!rows.length) {
    el.innerHTML = `<p class="muted">No step has started yet.</p>`;
    return;
  }
  const shown = rows.slice(-MAX_GANTT_ROWS);
  const starts = shown.map((a) => span(a).start).filter((t) => t !== null);
  const t0 = Math.min(run.createdAt ?? Infinity, ...starts); // reused steps keep their original (earlier) times
  const t1 = Math.max(run.finishedAt ?? Date.now(), ...shown.map((a) => span(a).end ?? t0), t0 + 1000);
  const total = t1 - t0;
  const pct = (t) => (((t - t0) / total) * 100).toFixed(2);
  const width = (a, b) => Math.max(0.4, ((b - a) / total) * 100).toFixed(2);
  const parts = [];
  if (rows.length > shown.length) parts.push(`<p class="muted small">Showing the last ${shown.length} of ${rows.length} attempts.</p>`);
  parts.push(
    `<div class="gantt-axis" aria-hidden="true"><span></span><div class="gantt-ticks">` +
      [0, 0.25, 0.5, 0.75, 1].map((f) => `<span style="left:${f * 100}%">${fmtDuration((total * f) / 1000) || "0 s"}</span>`).join("") +
      `</div></div>`,
  );
  for (const a of shown) {
    const s = span(a);
    const label = (a.attempt > 1 ? `${labelOf(a.path)} · attempt ${a.attempt}` : labelOf(a.path)) + (a.reused ? ` · reused from #${reusedFrom}` : "");
    const took = a.started && a.finished ? fmtDuration((a.finished - a.started) / 1000) : a.started ? "running" : "waiting";
    const waitEnd = a.started ?? s.end;
    const backoffEnd = a.due ? Math.min(a.due, waitEnd) : null; // a retry's backoff, then a wait for a worker
    const retryNote = a.due ? `, waiting for retry until ${clockTime(a.due)}` : "";
    const title = `${label}: ${a.status}${retryNote}${a.started ? `, started ${clockTime(a.started)}` : ""}${a.finished ? `, took ${took}` : ""}`;
    const waitStart = backoffEnd && backoffEnd > s.start ? backoffEnd : s.start;
    parts.push(
      `<div class="gantt-row${selected === a.path ? " selected" : ""}" role="listitem" data-path="${escapeHtml(a.path)}">` +
        `<button type="button" class="gantt-label linklike mono" data-select-step="${escapeHtml(a.path)}" title="${escapeHtml(title)}">${escapeHtml(label)}</button>` +
        `<div class="gantt-track">` +
        (backoffEnd && backoffEnd > s.start ? `<span class="gantt-backoff" style="left:${pct(s.start)}%;width:${width(s.start, backoffEnd)}%" title="waiting for retry until ${escapeHtml(clockTime(a.due))}"></span>` : "") +
        (s.start !== null && waitEnd > waitStart ? `<span class="gantt-wait" style="left:${pct(waitStart)}%;width:${width(waitStart, waitEnd)}%"></span>` : "") +
        (a.started ? `<span class="gantt-bar status-${escapeHtml(a.status)}" style="left:${pct(a.started)}%;width:${width(a.started, s.end)}%" title="${escapeHtml(title)}"></span>` : "") +
        `</div><span class="gantt-took mono small">${a.started || a.finished ? escapeHtml(a.finished && a.started ? took : a.status) : escapeHtml(a.due && a.due > Date.now() ? "retry wait" : a.status)}</span></div>`,
    );
  }
  el.innerHTML = parts.join("");
}

function renderSteps() {
  const tbody = document.querySelector("#steps-table tbody");
  const rows = [...latest.values()].sort((a, b) => a.block - b.block || (firstSeen(a.path) ?? 0) - (firstSeen(b.path) ?? 0) || byPath(a, b));
  if (!rows.length) return;
  const now = Date.now();
  tbody.innerHTML = rows
    .map((a) => {
      const took = a.started ? fmtDuration(((a.finished ?? (DONE.has(a.status) ? a.started : now)) - a.started) / 1000) : "";
      const p = progress.get(a.path);
      let extra = a.status === "running" && p ? ` <span class="muted small">${Math.round(p.fraction * 100)}% ${escapeHtml(p.message)}</span>` : "";
      if (a.status === "pending" && a.due && a.due > now) extra += ` <span class="muted small retry-wait">waiting for retry until ${escapeHtml(clockTime(a.due))}</span>`;
      if (a.reused) extra += ` <span class="reused" title="copied with its original times">reused from #${reusedFrom}</span>`;
      return (
        `<tr data-path="${escapeHtml(a.path)}"${selected === a.path ? ' class="selected"' : ""}>` +
        `<td><button type="button" class="linklike mono" data-select-step="${escapeHtml(a.path)}">${escapeHtml(labelOf(a.path))}</button></td>` +
        `<td>${badge(a.status)}${extra}</td><td class="num">${a.attempt}</td>` +
        `<td>${a.started ? `<time datetime="${new Date(a.started).toISOString()}">${clockTime(a.started)}</time>` : ""}</td>` +
        `<td class="num mono">${took}</td></tr>`
      );
    })
    .join("");
}

function byPath(a, b) {
  return a.path.localeCompare(b.path, undefined, { numeric: true });
}

function firstSeen(path) {
  return attempts.get(`${path}|1`)?.created ?? latest.get(path)?.created ?? null;
}

// --- logs ------------------------------------------------------------------------------------------------------

const logsEl = document.getElementById("logs");
const lastLogSeq = Math.max(0, ...data.logs.map((l) => l.seq)); // lines the page was rendered with

function addLog(line) {
  const nearBottom = logsEl.scrollHeight - logsEl.scrollTop - logsEl.clientHeight < 40;
  const li = document.createElement("li");
  li.innerHTML =
    `<time datetime="${new Date(line.at).toISOString()}">${clockTime(line.at)}</time> ` +
    `<button type="button" class="linklike mono step-ref" data-select-step="${escapeHtml(line.step)}">${escapeHtml(labelOf(line.step))}</button> ` +
    `<span class="msg">${escapeHtml(line.message)}</span>`;
  logsEl.append(li);
  while (logsEl.children.length > MAX_LOG_LINES) logsEl.firstElementChild.remove();
  document.getElementById("logs-empty").hidden = true;
  logsEl.hidden = false;
  if (nearBottom) logsEl.scrollTop = logsEl.scrollHeight;
  if (selected === line.step) refreshPanel();
}

// --- the step panel --------------------------------------------------------------------------------------------

const panel = document.getElementById("step-panel");

function select(target) {
  selected = target;
  for (const g of nodes.values()) g.classList.remove("selected");
  const key = target.startsWith("node:") ? target.slice(5) : keyOf(target);
  nodes.get(key)?.classList.add("selected");
  renderGantt();
  renderSteps();
  refreshPanel(true);
}

function selectNode(g) {
  const key = `${g.dataset.block}:${g.dataset.step}`;
  const kind = blockKinds.get(Number(g.dataset.block));
  const paths = latestOf(key);
  if (kind === "foreach") return select(`node:${key}`);
  if (kind === "loop" && paths.length) {
    const last = paths.reduce((a, b) => (iterationOf(b.path) > iterationOf(a.path) ? b : a));
    return select(last.path);
  }
  if (paths.length) return select(paths[0].path);
  selected = `node:${key}`;
  for (const n of nodes.values()) n.classList.remove("selected");
  g.classList.add("selected");
  panel.innerHTML = `<h2 id="step-panel-heading">${escapeHtml(labelOf(g.dataset.step))}</h2><p class="muted">This step has not started yet.</p>`;
}

function json(value) {
  const ref = valueRef(value); // a large value: its size, and a button that fetches it
  if (ref) {
    const url = data.urls.value + ref.$ref;
    return `<p class="value-ref"><span class="mono">${fmtBytes(ref.bytes)}</span> — <button type="button" class="btn btn-small" data-value-url="${escapeHtml(url)}">show</button></p>`;
  }
  return `<pre class="json" tabindex="0">${escapeHtml(JSON.stringify(value, null, 2))}</pre>`;
}

const refreshPanelSoon = throttle(() => loadPanel(), 400);
function refreshPanel(now = false) {
  if (now) loadPanel();
  else refreshPanelSoon();
}

let panelRequest = 0;
async function loadPanel() {
  if (!selected) return;
  const target = selected;
  if (target.startsWith("node:")) return renderForeachPanel(target.slice(5));
  const ticket = ++panelRequest;
  let body;
  try {
    const response = await fetch(data.urls.step.replace("{path}", encodeURIComponent(target)), { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) {
      if (ticket === panelRequest) panel.innerHTML = `<h2 id="step-panel-heading">${escapeHtml(target)}</h2><p class="muted">No details yet.</p>`;
      return;
    }
    body = await response.json();
  } catch {
    return;
  }
  if (ticket !== panelRequest || selected !== target) return;
  renderPanel(target, body);
}

function renderPanel(path, body) {
  const list = body.attempts;
  const a = list[list.length - 1];
  const took = a.duration !== null ? fmtDuration(a.duration) : a.started_at ? "running…" : "—";
  const child = a.child_runs?.length ? a.child_runs[a.child_runs.length - 1] : children.get(path);
  const p = progress.get(path);
  const parts = [
    `<div class="panel-head"><h2 id="step-panel-heading" class="mono">${escapeHtml(labelOf(path))}</h2>${badge(a.status)}</div>`,
    `<dl class="details">` +
      `<div><dt>Kind</dt><dd>${escapeHtml(a.kind)} · block ${a.block + 1}</dd></div>` +
      (a.status === "pending" && latest.get(path)?.due > Date.now() ? `<div><dt>Waiting</dt><dd>for retry until ${clockTime(latest.get(path).due)}</dd></div>` : "") +
      (latest.get(path)?.reused ? `<div><dt>Reused</dt><dd>from run #${reusedFrom}, with its original times</dd></div>` : "") +
      `<div><dt>Attempt</dt><dd>${a.attempt}</dd></div>` +
      `<div><dt>Started</dt><dd>${a.started_at ? clockTime(parseTime(a.started_at)) : "—"}</dd></div>` +
      `<div><dt>Finished</dt><dd>${a.finished_at ? clockTime(parseTime(a.finished_at)) : "—"}</dd></div>` +
      `<div><dt>Duration</dt><dd class="mono">${took}</dd></div>` +
      (a.worker ? `<div><dt>Worker</dt><dd class="mono small">${escapeHtml(a.worker)}</dd></div>` : "") +
      (a.pool ? `<div><dt>Pool</dt><dd>${escapeHtml(a.pool)}</dd></div>` : "") +
      `</dl>`,
  ];
  if (p && a.status === "running") {
    parts.push(`<div class="progress progress-lg" role="progressbar" aria-valuenow="${Math.round(p.fraction * 100)}" aria-valuemin="0" aria-valuemax="100" aria-label="Step progress"><span style="width:${Math.round(p.fraction * 100)}%"></span></div><p class="small muted">${escapeHtml(p.message)}</p>`);
  }
  if (child) parts.push(`<p><a class="btn btn-small" href="${escapeHtml(pageUrl("run", { id: child }))}">Open child run #${child} →</a></p>`);
  if (a.error) {
    parts.push(
      `<div class="panel-error"><h3>Error</h3><p><strong class="mono">${escapeHtml(a.error.type)}</strong> ${escapeHtml(a.error.message)}</p>` +
        (a.traceback ? `<details><summary>Traceback</summary><pre class="traceback">${escapeHtml(a.traceback)}</pre></details>` : "") +
        `</div>`,
    );
  }
  if (a.suspend_payload !== null && a.suspend_payload !== undefined) parts.push(`<h3>Asked</h3>${json(a.suspend_payload)}`);
  if (a.resume_data !== null && a.resume_data !== undefined) parts.push(`<h3>Resumed with</h3>${json(a.resume_data)}`);
  if (a.output !== null && a.output !== undefined) parts.push(`<h3>Output</h3>${json(a.output)}`);
  parts.push(`<h3>Input</h3>${json(a.input)}`);
  if (list.length > 1) {
    parts.push(
      `<h3>Attempts</h3><table class="compact"><thead><tr><th>#</th><th>Status</th><th>Started</th><th class="num">Took</th></tr></thead><tbody>` +
        list
          .map(
            (x) =>
              `<tr><td>${x.attempt}</td><td>${badge(x.status)}${x.error ? ` <span class="small" title="${escapeHtml(x.error.message)}">${escapeHtml(x.error.type)}</span>` : ""}</td>` +
              `<td>${x.started_at ? clockTime(parseTime(x.started_at)) : "—"}</td><td class="num mono">${x.duration !== null ? fmtDuration(x.duration) : ""}</td></tr>`,
          )
          .join("") +
        `</tbody></table>`,
    );
  }
  parts.push(
    `<h3>Logs</h3>` +
      (body.logs.length
        ? `<ol class="logs logs-compact">${body.logs.map((l) => `<li><time>${clockTime(parseTime(l.at))}</time> <span class="msg">${escapeHtml(l.message)}</span></li>`).join("")}</ol>`
        : `<p class="muted small">No log lines.</p>`),
  );
  if (data.can_operate && TERMINAL.has(run.status)) {
    const token = document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
    parts.push(
      `<form method="post" action="${escapeHtml(data.urls.restart)}" data-ajax-form class="panel-actions">` +
        `<input type="hidden" name="csrfmiddlewaretoken" value="${escapeHtml(token)}">` +
        `<input type="hidden" name="from_step" value="${escapeHtml(a.step_id)}">` +
        `<button type="submit" class="btn btn-small">Restart the run from ${escapeHtml(a.step_id)}</button></form>`,
    );
  }
  panel.innerHTML = parts.join("");
}

function renderForeachPanel(key) {
  const [block, id] = [key.split(":")[0], key.slice(key.indexOf(":") + 1)];
  const state = nodeState(key);
  const items = latestOf(key);
  items.sort((a, b) => (a.index ?? 0) - (b.index ?? 0) || a.path.localeCompare(b.path, undefined, { numeric: true }));
  panel.innerHTML =
    `<div class="panel-head"><h2 id="step-panel-heading" class="mono">${escapeHtml(labelOf(id))}</h2>${badge(state.status || "pending")}</div>` +
    `<p>foreach (block ${Number(block) + 1}): <strong>${state.done ?? 0}/${state.total ?? items.length}</strong> items done.</p>` +
    `<ul class="item-list">${items
      .map((a) => `<li><button type="button" class="linklike mono" data-select-step="${escapeHtml(a.path)}">${escapeHtml(labelOf(a.path))}</button> ${badge(a.status)}</li>`)
      .join("")}</ul>`;
}

// --- server fragments (actions, summary) -----------------------------------------------------------------------

const signatures = {};
function signature(html) {
  return html.replace(/name="csrfmiddlewaretoken" value="[^"]*"/g, "").replace(/<time[^>]*>[^<]*<\/time>/g, "");
}

const generations = {};
async function loadFragment(name) {
  const el = document.querySelector(`[data-fragment="${name}"]`);
  if (!el) return;
  const generation = (generations[name] = (generations[name] ?? 0) + 1);
  try {
    const response = await fetch(`${data.urls.page}?fragment=${name}`, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return;
    const html = await response.text();
    if (generation !== generations[name]) return; // a newer request is on its way: it wins
    const sig = signature(html);
    if (signatures[name] === undefined) signatures[name] = signature(el.innerHTML);
    if (sig === signatures[name]) return;
    signatures[name] = sig;
    el.innerHTML = html;
    tick(el);
  } catch {
    /* the next change tries again */
  }
}

const refreshFragments = throttle(() => {
  loadFragment("actions");
  loadFragment("summary");
}, 150);

document.addEventListener("workflows:action", () => {
  loadFragment("actions");
  loadFragment("summary");
});

// --- interaction -----------------------------------------------------------------------------------------------

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-select-step]");
  if (button) {
    select(button.dataset.selectStep);
    if (window.matchMedia("(max-width: 960px)").matches) panel.scrollIntoView({ behavior: "smooth", block: "start" });
    return;
  }
  const g = event.target.closest("g.node");
  if (g && graphEl.contains(g)) selectNode(g);
});
graphEl.addEventListener("keydown", (event) => {
  const g = event.target.closest("g.node");
  if (g && (event.key === "Enter" || event.key === " ")) {
    event.preventDefault();
    selectNode(g);
  }
});

// --- start -----------------------------------------------------------------------------------------------------

for (const key of nodes.keys()) paintNode(key);
paintRun();
renderGantt();
renderSteps();
setInterval(() => {
  if (!TERMINAL.has(run.status)) {
    renderGantt();
    renderSteps();
  }
}, 1000);

const conversation = liveConversation({
  section: document.getElementById("streaming"),
  list: document.getElementById("streaming-messages"),
  statusOf: (path) => latest.get(path)?.status ?? null,
  refresh: () =>
    loadFragment("conversation").then(() => {
      const list = document.querySelector("#run-conversation .conversation-messages");
      if (list) list.scrollTop = list.scrollHeight; // the newest message, which replaced the streamed text
    }),
});

const history = createHistory({ url: data.urls.history, createdAt: run.createdAt, labelOf });

// --- the connection ----------------------------------------------------------------------------------------------
// When the websocket drops, the page says so plainly: a banner, the duration stops ticking, the action buttons
// are disabled (what they would act on may have changed); all comes back, and the fragments reload, on reconnect.

const banner = document.getElementById("connection-banner");
let wasOpen = false;
let lostTimer = null;
function setOffline(value) {
  if (offline === value) return;
  offline = value;
  banner.hidden = !value;
  if (value) page.dataset.offline = "1";
  else delete page.dataset.offline;
  disableActions();
  paintRun();
  if (!value) {
    loadFragment("actions");
    loadFragment("summary");
  }
}
function disableActions() {
  for (const b of document.querySelectorAll("#run-actions button, #step-panel form button")) {
    if (offline && !b.disabled) {
      b.disabled = true;
      b.dataset.offlineDisabled = "1";
    } else if (!offline && b.dataset.offlineDisabled) {
      b.disabled = false;
      delete b.dataset.offlineDisabled;
    }
  }
}
new MutationObserver(() => offline && disableActions()).observe(document.getElementById("run-actions"), { childList: true, subtree: true });
live().onStatus((status) => {
  clearTimeout(lostTimer);
  if (status === "open") {
    wasOpen = true;
    setOffline(false);
  } else if (wasOpen) setOffline(true);
  else lostTimer = setTimeout(() => setOffline(true), 4000); // never connected: say so after a moment
});

live().subscribe(
  `run:${runId}`,
  {
    onEvent: (event) => {
      apply(event);
      conversation.event(event);
      history.event(event);
    },
    onTokens: conversation.tokens,
    onSubscribed: () => {
      page.dataset.subscribed = "1";
    },
    onError: (frame) => {
      console.warn("live updates:", frame.code, frame.message);
    },
  },
  { since: data.run.last_seq },
);

// A large value (the summary's input/output, the step panel's) is fetched when its "show" button is pressed.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-value-url]");
  if (!button) return;
  button.disabled = true;
  try {
    const value = await fetchValue(button.dataset.valueUrl);
    button.closest(".value-ref").outerHTML = json(value);
  } catch (error) {
    button.disabled = false;
    button.textContent = "retry";
    button.title = String(error);
  }
});
