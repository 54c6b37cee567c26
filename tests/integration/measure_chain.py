"""Throughput of real worker processes: steps per second of ``chain5`` runs (5 sequential steps each).

    .venv/bin/python -m tests.integration.measure_chain [--runs 40] [--workers 2] [--worker-class CLS]

Uses a fresh SQLite database in a temporary directory (or ``--database-url``, which is migrated and written to:
give it a throwaway database) and the embedded Redis of ``tests.settings``. Starts the workers, waits until they
are registered, then starts the runs and times from the first start until every run has succeeded.
Not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="rq.worker.SimpleWorker")
    parser.add_argument("--recovery", action="store_true", help="also run the recovery loop, as a deployment does")
    parser.add_argument("--database-url", help="a throwaway database (default: a new SQLite file)")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="measure-chain-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp / 'measure.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ.pop("WORKFLOWS_WORKER_CLASS", None)

    import django

    django.setup()  # tests.settings starts an embedded Redis unless REDIS_URL is set
    import redis
    from django.conf import settings
    from django.core.management import call_command

    from tests.integration.conftest import Processes
    from tests.testapp import flows
    from workflows.models import Run, RunStatus

    call_command("migrate", verbosity=0)
    conn = redis.Redis.from_url(settings.REDIS_URL)
    conn.flushdb()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = Processes(env=env, log_dir=tmp, redis=conn)
    try:
        procs.workers(args.workers, args.worker_class)
        if args.recovery:
            procs.recovery()
        started = time.monotonic()
        ids = [flows.chain5.start({"value": i}).pk for i in range(args.runs)]
        deadline = started + args.timeout
        while True:
            done = Run.objects.filter(pk__in=ids).terminal().count()
            if done == len(ids):
                break
            if time.monotonic() > deadline:
                print(f"timed out: {done}/{len(ids)} runs finished", file=sys.stderr)
                return 1
            time.sleep(0.02)
        elapsed = time.monotonic() - started
    finally:
        procs.stop_all()
    failed = Run.objects.filter(pk__in=ids).exclude(status=RunStatus.SUCCEEDED).count()
    steps = 5 * args.runs
    print(
        f"{args.runs} chain5 runs ({steps} steps), {args.workers} x {args.worker_class}"
        f"{' + recovery loop' if args.recovery else ''}, {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[1]}:"
        f" {elapsed:.2f}s, {steps / elapsed:.1f} steps/s, {args.runs / elapsed:.2f} runs/s"
        f"{f', {failed} NOT SUCCEEDED' if failed else ''}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
