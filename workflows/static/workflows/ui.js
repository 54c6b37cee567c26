// Shared pieces of the dashboard pages: the live connection and its indicator, formatting, badges, toasts,
// and a clock that keeps relative times and running durations current. Plain ES module, no build step.
import { LiveClient } from "./live.js";

export const STATUS_ICONS = {
  pending: "○",
  queued: "◔",
  running: "▶",
  waiting: "◷",
  suspended: "‖",
  succeeded: "✓",
  failed: "✕",
  canceled: "⊘",
  skipped: "↷",
};
export const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

let client = null;

/** The page's one websocket client (created on first use). */
export function live() {
  if (!client) {
    client = new LiveClient();
    const indicator = document.getElementById("live-indicator");
    const labels = { open: "Live", connecting: "Connecting…", closed: "Reconnecting…" };
    client.onStatus((status) => {
      document.body.dataset.live = status;
      if (!indicator) return;
      indicator.dataset.state = status;
      indicator.querySelector(".live-label").textContent = labels[status] ?? status;
      indicator.title = status === "open" ? "Live: updates arrive as they happen" : "Not connected: retrying";
    });
  }
  return client;
}

/**
 * A URL of the dashboard, from the page: base.html renders each as a data-<name>-url attribute of <body> (from the
 * project's URLconf, so any prefix works), with {placeholders}: pageUrl("run", { id: 42 }) -> "/wf/runs/42/",
 * pageUrl("apiWorkflows") -> data-api-workflows-url.
 */
export function pageUrl(name, params = {}) {
  const template = document.body.dataset[`${name}Url`];
  if (template === undefined) throw new Error(`this page has no data-${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}-url`);
  return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(String(params[key] ?? "")));
}

export function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** A status pill: icon and word, never colour alone (the same markup as the status_badge template tag). */
export function badge(status, label) {
  const s = status || "pending";
  return (
    `<span class="badge status-${escapeHtml(s)}" data-status="${escapeHtml(s)}">` +
    `<span class="badge-icon" aria-hidden="true">${STATUS_ICONS[s] ?? "•"}</span>` +
    `<span class="badge-text">${escapeHtml(label ?? s)}</span></span>`
  );
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function fmtPercent(fraction) {
  if (fraction === null || fraction === undefined) return "—";
  const v = fraction * 100;
  return v === 0 || v === 100 || v >= 10 ? `${v.toFixed(0)}%` : `${v.toFixed(1)}%`;
}

export function parseTime(value) {
  if (!value) return null;
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : t;
}

export function relTime(ms, now = Date.now()) {
  const s = Math.round((now - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

export function clockTime(ms) {
  return ms ? new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }) : "";
}

/** Keep <time data-relative> and [data-since] (a running duration) current; call after adding such elements. */
export function tick(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("time[data-relative]")) {
    const t = parseTime(el.getAttribute("datetime"));
    if (t) el.textContent = relTime(t, now);
  }
  for (const el of root.querySelectorAll("time[data-clock]")) {
    const t = parseTime(el.getAttribute("datetime")); // the server renders UTC; show the reader's local time
    if (t) el.textContent = clockTime(t);
    el.removeAttribute("data-clock");
  }
  for (const el of root.querySelectorAll("[data-since]")) {
    const t = parseTime(el.dataset.since);
    if (t) el.textContent = fmtDuration((now - t) / 1000);
  }
}

export function toast(message, kind = "info", ms = 5000) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = document.createElement("div");
  el.className = `toast toast-${kind}`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.textContent = message;
  box.append(el);
  setTimeout(() => el.classList.add("toast-out"), ms);
  setTimeout(() => el.remove(), ms + 400);
}

export function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (input) return input.value;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** Calls fn at most once per `ms`, after the last call (trailing debounce). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Calls fn at most once per `ms` while calls keep coming (leading call delayed by `ms`, never starved). */
export function throttle(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
}

// --- page start-up -------------------------------------------------------------------------------------------

for (const el of document.querySelectorAll(".toast")) {
  setTimeout(() => el.classList.add("toast-out"), 6000);
  setTimeout(() => el.remove(), 6400);
}
if (document.getElementById("live-indicator")) live();
tick();
setInterval(() => tick(), 1000);
