"""Dashboard response times with 100,000 runs in the database.

Seeds ``runs`` runs of ``bench-noop5`` (5 step rows and 22 journal events each, like a real 5-step run; 90%
succeeded, 5% failed, 5% running; one a minute) with INSERT ... SELECT, plus one run of ``bench-foreach`` with
1,000 item rows and 4,000 events. Then, logged in as a superuser (who sees every run), GETs each page
``requests`` times per repetition through ``django.test.Client`` (in-process: the view, its queries and the
template; no network, no ASGI server) and reports the median and the slowest. A page that does not answer 200
is reported with its status; when ``/runs/`` itself does not, the admin's changelist of runs is measured instead.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
import warnings
from datetime import UTC, timedelta

EVENT_KINDS = ["run_created", "step_pending", "step_queued", "run_started", "step_running", "step_succeeded"]


def say(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def run(params: dict) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    runs = int(params.get("runs", 100_000))
    requests = int(params.get("requests", 10))
    reps = int(params.get("reps", 3))
    started = time.perf_counter()
    typical, big = seed(runs, int(params.get("big_items", 1000)))
    seed_seconds = time.perf_counter() - started
    say(f"seeded {runs} runs in {seed_seconds:.1f}s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics, as autovacuum (or SQLite's optimize) would have
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-1")
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # a failing page is reported in the table
    warnings.filterwarnings("ignore", message="No directory at")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    pages = {
        "runs list (/runs/)": "/runs/",
        "runs list, page 2 (/runs/?cursor=...)": None,  # filled in from the first page's next link if any
        "run page, 5 steps (/runs/<id>/)": f"/runs/{typical}/",
        "run page, 1,000 steps (/runs/<id>/)": f"/runs/{big}/",
        "workflow page (/workflows/bench-noop5/)": "/workflows/bench-noop5/",
        "home (/)": "/",
        "API runs list (/api/runs/)": "/api/runs/",
        "API run, 1,000 steps (/api/runs/<id>/)": f"/api/runs/{big}/",
        "admin runs changelist": "/admin/workflows/run/",
    }
    pages["runs list, page 2 (/runs/?cursor=...)"] = _next_page(client)
    result: dict = {"runs": runs, "seed_seconds": round(seed_seconds, 1), "pages": {}}
    for name, url in pages.items():
        if name == "admin runs changelist" and result["pages"]["runs list (/runs/)"].get("status") == 200:
            continue  # measured only when the dashboard's own list is missing
        if url is None:
            result["pages"][name] = {"status": "n/a: no next-page link found on /runs/"}
            continue
        first = client.get(url)
        if first.status_code != 200:
            result["pages"][name] = {"url": url, "status": first.status_code}
            continue
        client.get(url)  # warm
        medians, worst = [], []
        for _ in range(reps):
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            medians.append(statistics.median(times))
            worst.append(max(times))
        queries = _queries(client, url)
        result["pages"][name] = {"url": url, "status": 200, "median_ms": medians, "max_ms": worst,
                                 "queries": queries, "bytes": len(first.content)}  # fmt: skip
        say(f"{name}: {statistics.median(medians):.1f} ms, {queries} queries")
    return result


def _next_page(client) -> str | None:
    import re

    response = client.get("/runs/")
    if response.status_code != 200:
        return None
    match = re.search(r'href="([^"]*cursor=[^"]+)"[^>]*rel="next"', response.content.decode())
    if not match:
        return None
    link = match.group(1).replace("&amp;", "&")
    return "/runs/" + link if link.startswith("?") else link


def _queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return len(ctx.captured_queries)


# --- seeding -------------------------------------------------------------------------------------------------


def seed(runs: int, big_items: int) -> tuple[int, int]:
    """Insert ``runs`` runs of bench-noop5 and one big foreach run; return (a typical run's id, the big one's)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from workflows.models import Run, RunEvent, StepRun
    from workflows.store.workflow_rows import row_for

    from .flows import fanout, noop5

    pg = connection.vendor == "postgresql"
    now = timezone.now()
    ts_type = "timestamptz" if pg else "datetime"

    def ts(value):
        return value if pg else value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")

    def jn(expr: str) -> str:  # an integer expression as a JSON value
        return f"to_jsonb({expr})" if pg else f"CAST({expr} AS TEXT)"

    def j(value) -> str:
        text = "'" + json.dumps(value).replace("'", "''") + "'"
        return f"CAST({text} AS jsonb)" if pg else text

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE bench_seq (n integer PRIMARY KEY, ts {ts_type})")
        batch = 20_000
        for lo in range(0, max(runs, big_items * 4), batch):
            cursor.executemany(
                "INSERT INTO bench_seq (n, ts) VALUES (%s, %s)",
                [(n, ts(now - timedelta(minutes=runs - n))) for n in range(lo, lo + batch)],
            )
        wf, version = row_for(noop5), noop5.version
        floor = Run.objects.order_by("-pk").values_list("pk", flat=True).first() or 0  # rows of ours are above
        status = "CASE WHEN s.n % 20 = 0 THEN 'failed' WHEN s.n % 20 = 1 THEN 'running' ELSE 'succeeded' END"
        _insert_select(cursor, Run, {
            "workflow_id": str(wf), "version": _lit(version), "status": status, "input": j({"value": 1}),
            "output": j({"value": 1}), "cursor": "4", "last_seq": "22", "created_at": "s.ts", "started_at": "s.ts",
            "finished_at": "CASE WHEN s.n % 20 = 1 THEN NULL ELSE s.ts END", "updated_at": "s.ts",
        }, f"FROM bench_seq s WHERE s.n < {runs}")  # fmt: skip
        step_status = "CASE WHEN r.status = 'running' AND k.n = 4 THEN 'running' ELSE 'succeeded' END"
        _insert_select(cursor, StepRun, {
            "run_id": "r.id", "block": "k.n", "path": "'noop' || (k.n + 1)", "step_id": "'noop' || (k.n + 1)",
            "kind": "'step'", "attempt": "1", "status": step_status, "pool": "'default'",
            "input": j({"value": 1}), "output": j({"value": 1}), "created_at": "r.created_at",
            "queued_at": "r.created_at", "started_at": "r.created_at", "finished_at": "r.created_at",
            "worker": "'bench:1'",
        }, f"FROM {Run._meta.db_table} r CROSS JOIN bench_seq k WHERE k.n < 5 AND r.id > {floor}")  # fmt: skip
        kind = "CASE " + " ".join(f"WHEN k.n % {len(EVENT_KINDS)} = {i} THEN '{k}'" for i, k in
                                  enumerate(EVENT_KINDS)) + " END"  # fmt: skip
        _insert_select(cursor, RunEvent, {
            "run_id": "r.id", "seq": "k.n + 1", "kind": kind, "step": "'noop1'",
            "data": j({"attempt": 1, "output": {"value": 1}}), "at": "r.created_at",
        }, f"FROM {Run._meta.db_table} r CROSS JOIN bench_seq k WHERE k.n < 22 AND r.id > {floor}")  # fmt: skip

        big_wf = row_for(fanout)
        big = Run.objects.create(workflow_id=big_wf, version=fanout.version, status="succeeded",
                                 input={"n": big_items}, cursor=1, last_seq=4 * big_items + 4,
                                 started_at=now, finished_at=now)  # fmt: skip
        StepRun.objects.create(run=big, block=0, path="items", step_id="items", kind="map", status="succeeded",
                               input={"n": big_items}, output=list(range(big_items)), started_at=now,
                               finished_at=now)  # fmt: skip
        _insert_select(cursor, StepRun, {
            "run_id": str(big.pk), "block": "1", "path": "'item[' || k.n || ']'", "step_id": "'item'",
            "kind": "'step'", "index": "k.n", "attempt": "1", "status": "'succeeded'", "pool": "'default'",
            "input": jn("k.n"), "output": jn("k.n"), "created_at": "k.ts", "queued_at": "k.ts", "started_at": "k.ts",
            "finished_at": "k.ts", "worker": "'bench:1'",
        }, f"FROM bench_seq k WHERE k.n < {big_items}")  # fmt: skip
        _insert_select(cursor, RunEvent, {
            "run_id": str(big.pk), "seq": "k.n + 1", "kind": "'step_succeeded'", "step": "'item[' || k.n || ']'",
            "data": j({"attempt": 1, "output": 1}), "at": "k.ts",
        }, f"FROM bench_seq k WHERE k.n < {4 * big_items}")  # fmt: skip
        cursor.execute("DROP TABLE bench_seq")
    typical = Run.objects.filter(workflow_id=wf, status="succeeded").order_by("-pk").values_list("pk", flat=True)[5]
    return typical, big.pk


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _insert_select(cursor, model, exprs: dict[str, str], tail: str) -> None:
    """INSERT INTO model's table every column: ``exprs`` for those given, the field's default for the rest."""
    from django.db import connection

    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.column in exprs:
            value = exprs[field.column]
        elif field.null:
            value = "NULL"
        elif field.has_default() and not callable(field.default):
            default = field.get_default()
            if isinstance(default, bool | int | float):
                value = str(int(default) if isinstance(default, bool) else default)
            elif isinstance(default, str) and field.get_internal_type() != "JSONField":
                value = _lit(default)
            else:
                text = _lit(json.dumps(default))
                value = f"CAST({text} AS jsonb)" if connection.vendor == "postgresql" else text
        elif field.blank and field.get_internal_type() in ("CharField", "TextField"):
            value = "''"
        else:
            raise ValueError(f"bench seeding: no value for {model.__name__}.{field.name}")
        columns.append(connection.ops.quote_name(field.column))
        values.append(value)
    cursor.execute(f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(values)} {tail}")
