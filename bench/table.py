"""The table ``make bench`` prints: one row per comparison, one column per database, and one sentence per row
saying exactly what is compared. Cells are ``median (min–max)`` over the interleaved repetitions; a ratio is
taken within each repetition (A and B measured back to back) before its median. A figure that is missing says
n/a and why; none is ever invented."""

from __future__ import annotations

from .report import DBS, _fmt, _na, cell
from .stats import percentile

CLASSES = {"SimpleWorker": "SimpleWorker", "Worker": "forking Worker"}


def ratios(a: list[float], b: list[float]) -> list[float]:
    """Per repetition, a ÷ b (the two were measured back to back in that repetition)."""
    return [x / y for x, y in zip(a, b, strict=False) if y]


def _compare(results: dict, db: str) -> dict:
    part = (results["db"].get(db) or {}).get("compare")
    if part is None:
        raise LookupError("not run")
    if "error" in part:
        raise LookupError(part["error"])
    return part


def _rate_cpu(v: dict, unit: str = "/s") -> str:
    return f"{cell(v['per_s'], unit)}; CPU {cell(v['cpu_ms'], ' ms')}"


def _ratio(a: dict, b: dict) -> str:
    return f"{cell(ratios(a['per_s'], b['per_s']), '×')}; CPU {cell(ratios(a['cpu_ms'], b['cpu_ms']), '×')}"


def _fraction(v: dict, db: dict) -> str:
    return cell([100 * r for r in ratios(v["per_s"], db["per_s"])], "%")


def _handoff(reps: list[dict]) -> str:
    values = [x for rep in reps for x in rep["return_start"]]
    return f"{_fmt(percentile(values, 50))} / {_fmt(percentile(values, 99))} ms" if values else "n/a"


def _mb(values: list) -> str:
    values = [v for v in values if v is not None]
    return f"{_fmt(sorted(values)[len(values) // 2])} MB" if values else "n/a"


def _peer(part: dict | None, raw: dict | None) -> str:
    if not part:
        return "n/a: not run"
    if "error" in part:
        return _na(part["error"])
    text = cell(part["steps_per_s"], "/s")
    if part.get("cpu_ms"):
        text += f"; CPU {cell(part['cpu_ms'], ' ms')}"
    if raw:
        mid = sorted(part["steps_per_s"])[len(part["steps_per_s"]) // 2]
        text += f"; {_fmt(mid / sorted(raw['per_s'])[len(raw['per_s']) // 2])}× raw RQ"
    return text


def rows(results: dict) -> list[tuple[str, dict[str, str], str]]:
    """(measure, {db: cell}, what is compared) for every row."""
    dbs = results["dbs"]
    out: list[tuple[str, dict[str, str], str]] = []
    params = results.get("params", {})
    first = next((_compare(results, db) for db in dbs if "compare" in (results["db"].get(db) or {})), {}) or {}
    runs, workers = first.get("runs", params.get("runs", 200)), first.get("workers", 2)

    def row(measure: str, what: str, fn) -> None:
        cells = {}
        for db in dbs:
            try:
                cells[db] = fn(_compare(results, db), db)
            except Exception as exc:  # shown as missing, never invented
                cells[db] = _na(f"{type(exc).__name__}: {exc}")
        out.append((measure, cells, what))

    base = f"{runs} runs × 5 no-op steps on {workers} workers"
    classes = {label: name for label, name in CLASSES.items() if label in first.get("classes", CLASSES)}
    for label, name in classes.items():
        c = lambda p, lab=label: p["classes"][lab]  # noqa: E731
        row(f"**{name}**: one job per step ÷ raw RQ one job per no-op (steps/s; CPU per step)",
            f"{base} with EAGER_SECONDS 0, against {5 * runs} raw RQ no-op jobs on {workers} plain `rq worker`s.",
            lambda p, db, c=c: _ratio(c(p)["step"], c(p)["raw1"]))  # fmt: skip
        row(f"{name}: eager ÷ raw RQ with 5 no-ops per job (steps/s; CPU per step)",
            f"the same runs with EAGER_SECONDS 1 (a run is one job), against {runs} raw RQ jobs of 5 no-ops each.",
            lambda p, db, c=c: _ratio(c(p)["eager"], c(p)["raw5"]))  # fmt: skip
        for key, what in (("step", "one job per step"), ("eager", "eager"), ("raw1", "raw RQ, one job per no-op"),
                          ("raw5", "raw RQ, 5 no-ops per job")):  # fmt: skip
            row(f"{name}, {what}: steps/s; CPU ms per step", "absolute figures behind the two ratios above.",
                lambda p, db, c=c, k=key: _rate_cpu(c(p)[k]))  # fmt: skip

    def unsafe_row(measure: str, what: str, fn) -> None:  # PostgreSQL only: "—" in the other columns
        if "postgresql" in dbs:
            row(f"PostgreSQL **unsafe** (fsync, synchronous_commit, full_page_writes off): {measure}", what,
                lambda p, db: fn(p["unsafe"]) if db == "postgresql" else "—")  # fmt: skip

    unsafe_row("SimpleWorker, one job per step ÷ raw RQ one job per no-op",
               "the first row again on the same cluster with its durability switched off (not for production).",
               lambda u: _ratio(u["step"], u["raw1"]))  # fmt: skip
    unsafe_row("SimpleWorker, eager ÷ raw RQ 5 no-ops per job", "the second row again with durability off.",
               lambda u: _ratio(u["eager"], u["raw5"]))  # fmt: skip
    row("**the database's own limit**: small transactions/s, 2 clients",
        "pgbench-like (update one of 1,000 rows + insert one row, commit) on the same database, between the "
        "measures above; PostgreSQL durable, SQLite WAL with the project's synchronous=NORMAL.",
        lambda p, db: _rate_cpu(p["classes"]["SimpleWorker"]["db"], " tx/s"))  # fmt: skip
    row("SimpleWorker steps/s as a share of the database's transactions/s: one job per step / eager",
        "each steps/s as a fraction of what the database commits, same repetition.",
        lambda p, db: " / ".join(_fraction(p["classes"]["SimpleWorker"][k], p["classes"]["SimpleWorker"]["db"])
                                 for k in ("step", "eager")))  # fmt: skip
    unsafe_row("transactions/s; one job per step / eager as a share of it",
               "the database's limit with durability off, and the unsafe steps/s against it.",
               lambda u: f"{cell(u['db']['per_s'], ' tx/s')}; "
                         + " / ".join(_fraction(u[k], u["db"]) for k in ("step", "eager")))  # fmt: skip
    for label, name in classes.items():
        row(
            f"{name} handoff p50 / p99: one job per step; eager",
            "a step's body returning → the next step's body starting, runs of 5 steps run one at a time on idle "
            "workers.",
            lambda p, db, lab=label: "; ".join(_handoff(p["classes"][lab]["handoff"][m]) for m in ("step", "eager")),
        )
    for label, name in classes.items():
        row(f"{name} worker RSS: one job per step / eager / raw RQ",
            "resident memory of each worker process (the parent, for the forking Worker) after the throughput "
            "measures (steps per set in the cell).",
            lambda p, db, lab=label: " / ".join(_mb(p["classes"][lab]["rss_mb"][k]) for k in ("step", "eager", "raw"))
            + f" after {p['classes'][lab]['steps_per_set']:,} steps")  # fmt: skip
    io = first.get("io", {})
    n, items = io.get("workers", 4), io.get("items", 1000)
    for mode, what in (("step", "one job per step"), ("eager", "eager"), ("raw", "raw RQ")):
        row(f"foreach of {items:,} × 50 ms items on {n} SimpleWorkers, {what}: seconds; overhead ms per item",
            f"wall time against the ideal {items * 0.05 / n:g} s (items × 50 ms ÷ {n}); overhead = a worker's "
            "time per item beyond its 50 ms. Raw RQ: as many 50 ms jobs.",
            lambda p, db, m=mode: f"{cell(p['io'][f'foreach {m}']['seconds'], ' s')}; "
                                  f"{cell(p['io'][f'foreach {m}']['overhead_ms'], ' ms')}")  # fmt: skip
    row(
        "chain of 20 × 50 ms steps, one run at a time: overhead ms per step, one job per step / eager",
        "wall time of the run ÷ 20 minus 50 ms.",
        lambda p, db: " / ".join(cell(p["io"][f"chain {m}"]["overhead_ms"], " ms") for m in ("step", "eager")),
    )
    raw = {
        db: (_compare(results, db)["classes"].get("SimpleWorker") or {}).get("raw1")
        for db in dbs
        if "compare" in (results["db"].get(db) or {}) and "error" not in _compare(results, db)
    }
    out.append(
        (
            "**DBOS** (peer): steps/s; CPU ms per step; ÷ raw RQ SimpleWorker",
            {db: _peer((results["db"].get(db) or {}).get("dbos"), raw.get(db)) for db in dbs},
            f"{runs} DBOS workflows of 5 no-op steps, 2 executors, its system database on the same database "
            "server; measured after the block above, not interleaved with it.",
        )
    )
    celery = (results.get("peers") or {}).get("celery")
    out.append(
        (
            "**Celery** (peer, no database): tasks/s; CPU ms per task; ÷ raw RQ SimpleWorker",
            {db: _peer(celery, raw.get(db)) if i == 0 else "same (no database)" for i, db in enumerate(dbs)},
            f"{runs} chains of 5 no-op tasks, 2 `--pool solo` workers, the same Redis, no result backend; "
            "not interleaved.",
        )
    )
    for key, label, what in (
        ("push_held", "push p50 / p99, held like a worker's job",
         "a transition committed → a websocket client has the frame, real daphne; publications held up to "
         "HOLD_SECONDS as a worker's job holds them (what workers produce)."),
        ("push", "push p50 / p99, sent at once (not what workers do)", "the same with nothing held."),
    ):  # fmt: skip
        push = results.get(key) or {"error": "not run"}
        text = f"{cell(push['p50'])} / {cell(push['p99'])} ms" if "p50" in push else _na(push["error"])
        out.append((label, {db: text if db == dbs[0] else "same (own SQLite database)" for db in dbs}, what))
    return out


def markdown(results: dict) -> str:
    dbs = results["dbs"]
    lines = ["| measure | " + " | ".join(DBS[d] for d in dbs) + " | what is compared |",
             "| --- | " + " | ".join("---" for _ in dbs) + " | --- |"]  # fmt: skip
    for measure, cells, what in rows(results):
        lines.append(f"| {measure} | " + " | ".join(cells.get(d, "n/a") for d in dbs) + f" | {what} |")
    return "\n".join(lines)


def notes(results: dict) -> str:
    reps = results["params"].get("reps", 3)
    loads = [f"{DBS[db]} {part['load_before']}→{part['load_after']}" for db, parts in results["db"].items()
             for name, part in parts.items() if name == "compare" and "load_before" in part]  # fmt: skip
    return (
        f"Median (min–max) of {reps} interleaved repetition(s) (A, B, C… then B, C, …, A); ratios taken "
        "within a repetition. CPU = user + system time of every process involved (workers and their forked "
        "horses, Redis, the PostgreSQL server and its backends, the driver), from /proc, per step. "
        f"{results.get('machine', '')}; {results.get('finished', '')}, {results.get('seconds', 0) / 60:.1f} min "
        f"in all. Load average (1 min) before→after: {', '.join(loads) or 'n/a'}. PostgreSQL: a throwaway "
        "local cluster, durable unless the row says unsafe. Redis: embedded, unix socket."
    )
