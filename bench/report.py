"""The markdown table (median and min–max of the repetitions, beside each target) and the chart."""

from __future__ import annotations

import math
from pathlib import Path

from .stats import percentile, spread

DBS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
OK, NO = "✅", "❌"


def _fmt(value: float, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    digits = 2 if abs(value) < 1 else 1 if abs(value) < 100 else 0
    return f"{value:,.{digits}f}{unit}"


def cell(values: list[float] | None, unit: str = "", check=None) -> str:
    """``median (min–max)`` of the repetitions, with ✅/❌ when ``check(median)`` is given."""
    if not values:
        return "n/a"
    mid, lo, hi = spread(values)
    text = _fmt(mid, unit) if len(values) == 1 else f"{_fmt(mid, unit)} ({_fmt(lo)}–{_fmt(hi)})"
    return text + (f" {OK if check(mid) else NO}" if check else "")


def _na(reason: str) -> str:
    return f"n/a: {reason}".replace("|", "/").replace("\n", " ")[:160]


def _get(d: dict | None, *path):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def rows(results: dict) -> list[tuple[str, str, dict[str, str], str]]:
    """(section, measure, {db: cell}, target) for every row of the table."""
    dbs = results["dbs"]
    out: list[tuple[str, str, dict[str, str], str]] = []

    def per_db(section: str, measure: str, target: str, fn) -> None:
        cells = {}
        for db in dbs:
            part = results["db"].get(db, {})
            try:
                cells[db] = fn(part)
            except Exception as exc:  # a missing figure is shown as such, never invented
                cells[db] = _na(f"{type(exc).__name__}: {exc}")
        out.append((section, measure, cells, target))

    def scenario(part: dict, name: str) -> dict:
        value = part.get(name)
        if value is None:
            raise LookupError("not run")
        if "error" in value:
            raise LookupError(value["error"])
        return value

    t = results.get("params", {})
    sec = f"Throughput: {t.get('runs', 200)} runs × 5 no-op steps, 2 workers"
    for label in ("SimpleWorker", "Worker"):

        def klass(part, label=label):
            data = scenario(part, "throughput")["classes"].get(label)
            if data is None:
                raise LookupError("not run")
            return data

        if not any(label in (_get(results["db"].get(db), "throughput", "classes") or {}) for db in dbs):
            continue
        per_db(sec, f"workflows, {label}: steps/s", "", lambda p, k=klass: cell(k(p)["workflows_steps_per_s"]))
        per_db(sec, f"raw RQ, {label}: no-op jobs/s (same Redis)", "", lambda p, k=klass: cell(k(p)["raw_jobs_per_s"]))
        per_db(sec, f"**workflows ÷ raw RQ, {label}**", "≥ 0.75×",
               lambda p, k=klass: cell(k(p)["ratio"], "×", lambda v: v >= 0.75))  # fmt: skip

    peers = results.get("peers", {})
    celery = peers.get("celery") or {"error": "not run"}
    celery_cell = cell(celery["steps_per_s"]) if "steps_per_s" in celery else _na(celery["error"])
    out.append((sec, "Celery: chain of 5 no-op tasks, tasks/s", {db: celery_cell if i == 0 else "(Redis only: same run)"
               for i, db in enumerate(dbs)}, ""))  # fmt: skip

    def dbos(part):
        value = part.get("dbos") or {"error": "not run"}
        return cell(value["steps_per_s"]) if "steps_per_s" in value else _na(value["error"])

    per_db(sec, "DBOS: 5-step workflow, steps/s", "", dbos)

    sec = "Handoff latency: one run at a time, idle workers"
    for label in ("SimpleWorker", "Worker"):

        def handoff(part, key, label=label):
            reps = scenario(part, "throughput")["classes"][label]["handoff"]
            p50 = [percentile(r[key], 50) for r in reps]
            p99 = [percentile(r[key], 99) for r in reps]
            return p50, p99

        if not any(label in (_get(results["db"].get(db), "throughput", "classes") or {}) for db in dbs):
            continue
        target = "p50 ≤ 5 ms" if label == "SimpleWorker" else ""
        check = (lambda v: v <= 5) if label == "SimpleWorker" else None
        per_db(sec, f"{label}: step returns → next step starts, p50 / p99 ms", target,
               lambda p, h=handoff, c=check: f"{cell(h(p, 'return_start')[0], '', c)} / "
                                             f"{cell(h(p, 'return_start')[1])}")  # fmt: skip
        per_db(
            sec,
            f"{label}: StepRun finished_at → next started_at, p50 / p99 ms",
            "",
            lambda p, h=handoff: f"{cell(h(p, 'finished_started')[0])} / {cell(h(p, 'finished_started')[1])}",
        )

    sec = "Push latency: real daphne, websocket client"
    for key, label in (
        ("push", "commit → client has the frame, p50 / p99 ms"),
        ("push_held", "the same, committed like a worker's job (held ≤ HOLD_SECONDS), p50 / p99 ms"),
    ):
        push = results.get(key) or {"error": "not run"}
        if "p50" in push:
            push_cell = f"{cell(push['p50'])} / {cell(push['p99'], '', lambda v: v <= 50)}"
        else:
            push_cell = _na(push["error"])
        out.append((sec, label, {
            db: push_cell if db == "sqlite" else "n/a: push_latency.py uses its own SQLite database" for db in dbs
        }, "p99 ≤ 50 ms"))  # fmt: skip

    sec = "Scale: 2 SimpleWorkers"
    per_db(
        sec, "10-step chain (one step at a time): ms per step", "", lambda p: cell(scenario(p, "scale")["chain"], " ms")
    )

    def items(p):
        return f"{scenario(p, 'scale')['foreach_items']:,}"

    per_db(
        sec,
        "foreach (10 items at once): ms per item",
        "",
        lambda p: cell(scenario(p, "scale")["foreach"], " ms") + f" ({items(p)} items)",
    )
    per_db(
        sec,
        "foreach: start() creating the item rows, ms",
        "",
        lambda p: cell(scenario(p, "scale")["foreach_start"], " ms"),
    )
    per_db(
        sec,
        "foreach: pace of the last 10% of items ÷ the first 10%",
        "≈ 1: no slow-down (≤ 1.5)",
        lambda p: cell(scenario(p, "scale")["foreach_growth"], "×", lambda v: v <= 1.5),
    )

    def storage(p):
        s = scenario(p, "scale")["storage"]
        per = " / ".join(f"{s['bytes'][str(n)] / n:,.0f}" for n in s["sizes"])
        return f"{per} B/step; +{s['marginal_bytes_per_step'][-1]:,.0f} B per extra step {OK if s['linear'] else NO}"

    sizes = "10 / 100 / 1,000"
    for db in dbs:
        s = _get(results["db"].get(db), "scale", "storage")
        if s:
            sizes = " / ".join(f"{n:,}" for n in s["sizes"])
            break
    per_db(sec, f"bytes stored per step, runs of {sizes} steps (rows, no indexes)", "linear in steps", storage)
    per_db(
        sec,
        f"the Run row itself, runs of {sizes} steps, bytes",
        "constant",
        lambda p: " / ".join(f"{v:,}" for v in scenario(p, "scale")["storage"]["run_row_bytes"].values()),
    )

    def amplification(p):
        a = scenario(p, "scale")["amplification"]
        mb = a["input_bytes"] / 1e6
        return (f"{cell([a['ratio']], '×', lambda v: v <= 2)} ({a['json_bytes'] / 1e6:.1f} MB of JSON for {mb:.1f} MB; "
                f"tables +{a['table_growth_bytes'] / 1e6:.1f} MB)")  # fmt: skip

    per_db(sec, "bytes stored per byte of user data: 10-step chain passing a 1 MB value along", "≤ 2",
           amplification)  # fmt: skip
    keys = next((_get(results["db"].get(db), "admission", "keys") for db in dbs), None) or 1000
    sec = f"Admission: {keys:,} distinct concurrency keys, {keys * 2:,} pending steps (one process, no workers)"
    per_db(
        sec, "pass admitting 10 steps without keys: ms", "", lambda p: cell(scenario(p, "admission")["plain"], " ms")
    )
    per_db(sec, "pass admitting 10 steps, key_limit=1 per key: ms", "",
           lambda p: cell(scenario(p, "admission")["keyed"], " ms"))  # fmt: skip
    per_db(sec, f"pass over {keys:,} steps whose keys are all at their limit (admits none): ms", "",
           lambda p: cell(scenario(p, "admission")["blocked"], " ms"))  # fmt: skip

    n_runs = None
    for db in dbs:
        n_runs = _get(results["db"].get(db), "pages", "runs") or n_runs
    sec = f"Pages: {n_runs or 100_000:,} runs in the database, median of GETs"
    names: list[str] = []
    for db in dbs:
        for name in _get(results["db"].get(db), "pages", "pages") or {}:
            if name not in names:
                names.append(name)
    list_pages = ("runs list", "workflow page", "home", "API runs list")

    def page(p, name):
        data = scenario(p, "pages")["pages"].get(name)
        if data is None:
            raise LookupError("not measured")
        if data.get("status") != 200:
            return _na(f"HTTP {data.get('status')}" if isinstance(data.get("status"), int) else str(data["status"]))
        check = (lambda v: v <= 150) if name.startswith(list_pages) else None
        return f"{cell(data['median_ms'], ' ms', check)}, {data['queries']} queries"

    for name in names:
        target = "≤ 150 ms" if name.startswith(list_pages) else ""
        per_db(sec, name, target, lambda p, n=name: page(p, n))
    return out


def markdown(results: dict) -> str:
    dbs = results["dbs"]
    head = "| | " + " | ".join(DBS[d] for d in dbs) + " | target |"
    lines = [head, "| --- | " + " | ".join("---" for _ in dbs) + " | --- |"]
    section = None
    for sec, measure, cells, target in rows(results):
        if sec != section:
            lines.append(f"| **{sec}** | " + " | ".join("" for _ in dbs) + " | |")
            section = sec
        lines.append(f"| {measure} | " + " | ".join(cells.get(d, "n/a") for d in dbs) + f" | {target} |")
    return "\n".join(lines)


def chart(results: dict, path: Path) -> str | None:
    """A PNG: throughput of every system (log scale) and the latencies, per database. None, or why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"no chart: {exc}"
    dbs = results["dbs"]
    systems: dict[str, dict[str, list[float]]] = {}
    for db in dbs:
        part = results["db"].get(db, {})
        for label, data in (_get(part, "throughput", "classes") or {}).items():
            systems.setdefault(f"workflows\n{label}", {})[db] = data["workflows_steps_per_s"]
            systems.setdefault(f"raw RQ\n{label}", {})[db] = data["raw_jobs_per_s"]
        if "steps_per_s" in (part.get("dbos") or {}):
            systems.setdefault("DBOS", {})[db] = part["dbos"]["steps_per_s"]
    celery = (results.get("peers") or {}).get("celery") or {}
    if "steps_per_s" in celery:
        systems["Celery\n(Redis only)"] = {dbs[0]: celery["steps_per_s"]}
    latencies: dict[str, dict[str, list[float]]] = {}
    for db in dbs:
        for label, data in (_get(results["db"].get(db), "throughput", "classes") or {}).items():
            for p in (50, 99):
                latencies.setdefault(f"handoff p{p}\n{label}", {})[db] = [
                    percentile(r["return_start"], p) for r in data["handoff"]
                ]
    for key, name in (("push", "push"), ("push_held", "push, held")):
        push = results.get(key) or {}
        if "p50" in push:
            latencies[f"{name} p50"] = {"sqlite": push["p50"]}
            latencies[f"{name} p99"] = {"sqlite": push["p99"]}

    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    for ax, data, title, unit in (
        (axes[0], systems, "Throughput (log scale; higher is better)", "steps or jobs per second"),
        (axes[1], latencies, "Latency (lower is better)", "ms"),
    ):
        labels = list(data)
        width = 0.8 / max(1, len(dbs))
        for i, db in enumerate(dbs):
            xs, ys, err = [], [], [[], []]
            for j, label in enumerate(labels):
                values = data[label].get(db)
                if values:
                    mid, lo, hi = spread(values)
                    xs.append(j + (i - (len(dbs) - 1) / 2) * width)
                    ys.append(mid)
                    err[0].append(mid - lo)
                    err[1].append(hi - mid)
            ax.bar(xs, ys, width, yerr=err, capsize=3, label=DBS[db])
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_yscale("log")
    fig.suptitle(f"make bench, {results.get('finished', '')}: median of {results['params'].get('reps', 3)} runs, "
                 "bars min–max")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
