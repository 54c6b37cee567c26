"""The hot path, measured from inside: queries per transition and a pyinstrument profile of a worker.

In this process (no worker processes): an RQ ``SimpleWorker`` runs the jobs of ``runs`` runs of
``bench-noop5`` under pyinstrument, after one run was executed job by job with every query captured. Also
times opening a database connection (what a forked work horse, or any job under ``CONN_MAX_AGE=0``, pays).
Writes the full report to ``out_text`` and returns the figures.
"""

from __future__ import annotations

import re
import statistics
import time
import uuid
from collections import Counter
from pathlib import Path


def _kind(sql: str) -> str:
    head = sql.lstrip().split(None, 1)[0].upper()
    if head == "SELECT" and "FOR UPDATE" in sql.upper():
        return "SELECT … FOR UPDATE"
    return head


def _worker():
    from rq import SimpleWorker

    from workflows import conf
    from workflows.runtime import dispatch

    queues = [dispatch.get_queue(q) for q in conf.queue_names()]
    return SimpleWorker(queues, connection=queues[0].connection, serializer=dispatch.JSONSerializer,
                        name=f"profile-{uuid.uuid4().hex[:8]}")  # fmt: skip


def run(params: dict) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    from .flows import noop5

    runs = int(params.get("runs", 100))
    out_text = Path(params["out_text"])
    worker = _worker()
    noop5.start({"value": 0})
    worker.work(burst=True, logging_level="WARNING")  # warm-up: imports, Workflow rows, connections

    report: list[str] = []
    with CaptureQueriesContext(connection) as start_q:
        noop5.start({"value": 1})
    jobs = []
    while True:
        with CaptureQueriesContext(connection) as q:
            worked = worker.work(burst=True, max_jobs=1, logging_level="WARNING")
        if not worked:
            break
        jobs.append([x["sql"] for x in q.captured_queries])
    queries = [sql for job in jobs for sql in job]  # one run: its first step's job runs the rest (handoff)
    per_step = round(len(queries) / 5, 1)
    kinds = Counter(_kind(sql) for sql in queries)
    report.append(f"start(): {len(start_q.captured_queries)} queries")
    report.append(
        f"one run of 5 steps: {len(jobs)} RQ job(s), {len(queries)} queries ({per_step} per step), "
        f"{kinds.get('COMMIT', 0)} transactions, by kind {dict(kinds)}"
    )
    if queries:
        report.append("\nqueries of the run's steps, in order:")
        report += ["  " + re.sub(r"\s+", " ", sql)[:220] for sql in queries]

    connect_ms = []
    for _ in range(20):
        connection.close()
        t = time.perf_counter()
        connection.ensure_connection()
        connect_ms.append((time.perf_counter() - t) * 1000)
    report.append(f"\nopening a database connection: median {statistics.median(connect_ms):.2f} ms")

    for i in range(runs):
        noop5.start({"value": i})
    profiler = Profiler(interval=0.0005)
    profiler.start()
    started = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    seconds = time.perf_counter() - started
    profiler.stop()
    steps = 5 * runs
    report.append(f"\nin-process SimpleWorker: {steps} steps in {seconds:.2f}s = {steps / seconds:.1f} steps/s, "
                  f"{seconds / steps * 1000:.2f} ms/step")  # fmt: skip
    root = profiler.last_session.root_frame()
    inclusive, own = _aggregate(root)
    report.append("\ninclusive time per step (ms), outermost calls only, top 45:")
    for (where, fn), t in inclusive.most_common(45):
        report.append(f"  {t / steps * 1000:7.3f}  {fn}  ({where})")
    report.append("\nself time per step (ms), top 30:")
    for (where, fn), t in own.most_common(30):
        report.append(f"  {t / steps * 1000:7.3f}  {fn}  ({where})")
    report.append("\n" + profiler.output_text(unicode=True, color=False, show_all=False))
    out_text.write_text("\n".join(report))
    return {
        "start_queries": len(start_q.captured_queries),
        "queries_per_step": per_step,
        "query_kinds": dict(kinds),
        "connect_ms": statistics.median(connect_ms),
        "in_process_steps_per_s": steps / seconds,
        "hot": [[fn, where, round(t / steps * 1000, 3)] for (where, fn), t in inclusive.most_common(45)],
    }


def _aggregate(root) -> tuple[Counter, Counter]:
    """(inclusive seconds per (file, function), counting only the outermost call; self seconds per same)."""
    inclusive: Counter = Counter()
    own: Counter = Counter()

    def walk(frame, active: frozenset) -> None:
        key = (frame.file_path_short or "?", frame.function)
        if key not in active:
            inclusive[key] += frame.time
        own[key] += frame.total_self_time
        for child in frame.children:
            walk(child, active | {key})

    if root is not None:
        walk(root, frozenset())
    return inclusive, own
