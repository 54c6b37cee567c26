"""Run one scenario against one database, in a process of its own, and write its figures as JSON.

    DATABASE_URL=... REDIS_URL=... python -m bench.scenario NAME --out FILE [--params JSON]

Called by ``bench.run`` (one process per scenario and database: Django binds a process to one database).
The database must be migrated already. Prints progress on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

SCENARIOS = {
    "compare": "bench.compare",  # the honest comparison: side by side, interleaved, CPU per step
    "throughput": "bench.throughput",  # workflows vs raw RQ, and the handoff latency
    "scale": "bench.scale",  # per-step overhead (chain vs foreach), bytes stored per step
    "pages": "bench.pages",  # dashboard response times with 100,000 runs
    "profile": "bench.profile",  # the hot path under pyinstrument, and queries per transition
    "admission": "bench.admission",  # admission passes with 1,000 distinct concurrency keys
}


def say(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(SCENARIOS))
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--params", default="{}", help="JSON object of the scenario's parameters")
    parser.add_argument("--log-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

    import django

    django.setup()
    module = importlib.import_module(SCENARIOS[args.name])
    params = json.loads(args.params)
    params.setdefault("log_dir", str(args.log_dir or args.out.parent / f"logs-{args.name}"))
    started = time.monotonic()
    result = module.run(params)
    result["seconds"] = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
