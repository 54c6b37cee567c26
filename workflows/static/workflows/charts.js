// The workflow page's charts, drawn as SVG: the duration of each recent run (bar colour: its outcome, live) and
// the runs of each of the last 14 days stacked by outcome.
import { onSummaries } from "./runs.js";
import { escapeHtml, fmtDuration, pageUrl, parseTime, TERMINAL } from "./ui.js";

const dataEl = document.getElementById("chart-data");
const data = dataEl ? JSON.parse(dataEl.textContent) : null;

function niceMax(value) {
  if (value <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}

function durationsChart(el, runs) {
  const finished = runs.filter((r) => r.duration !== null && r.duration !== undefined);
  if (!finished.length) {
    el.innerHTML = `<p class="muted small chart-empty">${escapeHtml(el.dataset.empty || "No data yet.")}</p>`;
    return;
  }
  const W = 480;
  const H = 140;
  const left = 44;
  const bottom = 18;
  const top = 8;
  const max = niceMax(Math.max(...finished.map((r) => r.duration)));
  const slot = (W - left - 4) / Math.max(finished.length, 20);
  const bar = Math.max(2, Math.min(18, slot - 2));
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const parts = [
    `<svg viewBox="0 0 ${W} ${H}" role="group" aria-label="Durations of the last ${finished.length} finished runs, up to ${escapeHtml(fmtDuration(max))}">`,
  ];
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    parts.push(`<line class="grid" x1="${left}" x2="${W}" y1="${y(v)}" y2="${y(v)}"/>`);
    parts.push(`<text class="axis" x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${escapeHtml(fmtDuration(v) || "0")}</text>`);
  }
  finished.forEach((r, i) => {
    const x = left + 4 + i * slot;
    const h = Math.max(1.5, H - bottom - y(r.duration));
    const when = parseTime(r.created_at);
    parts.push(
      `<a href="${escapeHtml(pageUrl("run", { id: r.id }))}" aria-label="Run #${r.id}, ${escapeHtml(r.status)}, ${escapeHtml(fmtDuration(r.duration))}"><rect class="bar status-${escapeHtml(r.status)}" x="${x.toFixed(1)}" y="${(H - bottom - h).toFixed(1)}" width="${bar.toFixed(1)}" height="${h.toFixed(1)}" rx="1.5">` +
        `<title>#${r.id} ${escapeHtml(r.status)} in ${escapeHtml(fmtDuration(r.duration))}${when ? ` · ${new Date(when).toLocaleString()}` : ""}</title></rect></a>`,
    );
  });
  parts.push(`<text class="axis" x="${left + 4}" y="${H - 4}">older</text><text class="axis" x="${W}" y="${H - 4}" text-anchor="end">newer</text>`);
  parts.push("</svg>");
  el.innerHTML = parts.join("");
}

function daysChart(el, days) {
  const W = 480;
  const H = 120;
  const left = 44;
  const bottom = 18;
  const top = 8;
  const max = niceMax(Math.max(1, ...days.map((d) => d.total)));
  const slot = (W - left - 4) / days.length;
  const bar = Math.min(22, slot - 4);
  const scale = (H - top - bottom) / max;
  const parts = [`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Runs per day over the last ${days.length} days">`];
  for (const f of max >= 4 ? [0, 0.5, 1] : [0, 1]) {
    const yy = H - bottom - max * f * scale;
    parts.push(`<line class="grid" x1="${left}" x2="${W}" y1="${yy}" y2="${yy}"/>`);
    parts.push(`<text class="axis" x="${left - 6}" y="${yy + 4}" text-anchor="end">${Math.round(max * f)}</text>`);
  }
  days.forEach((d, i) => {
    const x = left + 4 + i * slot + (slot - bar) / 2;
    let yy = H - bottom;
    const other = d.total - d.succeeded - d.failed - d.canceled;
    for (const [status, n] of [["succeeded", d.succeeded], ["failed", d.failed], ["canceled", d.canceled], ["running", other]]) {
      if (!n) continue;
      const h = n * scale;
      yy -= h;
      parts.push(`<rect class="bar status-${status}" x="${x.toFixed(1)}" y="${yy.toFixed(1)}" width="${bar.toFixed(1)}" height="${h.toFixed(1)}"><title>${d.day}: ${n} ${status === "running" ? "active" : status}</title></rect>`);
    }
    if (i % 2 === days.length % 2 || days.length <= 7) {
      parts.push(`<text class="axis" x="${(x + bar / 2).toFixed(1)}" y="${H - 4}" text-anchor="middle">${d.day.slice(8)}</text>`);
    }
  });
  parts.push("</svg>");
  el.innerHTML = parts.join("");
}

if (data) {
  const durationsEl = document.getElementById("chart-durations");
  const daysEl = document.getElementById("chart-days");
  const runs = data.durations;
  durationsChart(durationsEl, runs);
  daysChart(daysEl, data.days);
  const topic = document.querySelector("table[data-live-runs]")?.dataset.liveRuns;
  if (topic) {
    onSummaries(topic, (s) => {
      if (!TERMINAL.has(s.status) || runs.some((r) => r.id === s.id)) return;
      const start = parseTime(s.started_at);
      const end = parseTime(s.finished_at);
      runs.push({ id: s.id, status: s.status, created_at: s.created_at, duration: start && end ? (end - start) / 1000 : null });
      runs.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id - b.id));
      while (runs.length > 80) runs.shift();
      durationsChart(durationsEl, runs);
    });
  }
}
