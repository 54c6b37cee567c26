"""Commit-to-client latency of live updates, against a real daphne, Redis and websocket client.

    .venv/bin/python bench/push_latency.py [--events 1000] [--rate 200] [--warmup 50] [--held]

Starts an embedded Redis (unless REDIS_URL is set), a fresh SQLite database and daphne in a temporary directory,
subscribes a websocket client (the ``websockets`` library, in a process of its own, like a browser) to one run,
then appends ``--events`` journal events to that run through the engine's own path (``engine.appends.record``: lock the
run, write the event with its seq, commit, publish after commit), at ``--rate`` events per second. With
``--held``, they are committed the way a worker's job commits its transitions: publications held up to
``LIVE["HOLD_SECONDS"]`` and sent together.

For each event, latency = (the client has the frame) - (the transaction committed): the commit time is taken
by an ``on_commit`` hook registered before the journal's own, so it runs right after COMMIT and before
publication. Both processes read the same clock (``time.monotonic``, system-wide on Linux). Also reported: how
long publication holds the committing process after commit (the price every transition pays). Prints a
markdown table. Not a test.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.live_site import live_site  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def run_client(port: int, cookie: str, run_id: int, total: int) -> None:
    """The websocket client process: subscribe, say "ready", then print "<i> <monotonic time>" per frame."""
    from tests.integration.live_fixtures import LiveSocket

    ws = LiveSocket(port, cookie)
    ws.send(op="subscribe", topic=f"run:{run_id}", since=0)
    reply = ws.recv()
    assert reply["op"] == "subscribed", reply
    ws.until(lambda f: f.get("seq") == reply["last_seq"])
    print("ready", flush=True)
    received = {}
    while len(received) < total:
        frame = ws.recv(timeout=60)
        if frame.get("op") == "event" and frame["kind"] == "bench":
            received[frame["data"]["i"]] = time.monotonic()
    ws.close()
    print("\n".join(f"{i} {t!r}" for i, t in received.items()), flush=True)


def main() -> None:
    if sys.argv[1:2] == ["--client"]:
        port, cookie, run_id, total = sys.argv[2:6]
        return run_client(int(port), cookie, int(run_id), int(total))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000, help="events measured (after the warm-up)")
    parser.add_argument("--rate", type=float, default=200, help="events per second (0: as fast as possible)")
    parser.add_argument("--warmup", type=int, default=50, help="events sent first and not measured")
    parser.add_argument(
        "--held", action="store_true", help="commit like a worker's job: publications held up to LIVE HOLD_SECONDS"
    )
    args = parser.parse_args()

    with live_site("push-latency") as site:
        measure(args, site)


def measure(args: argparse.Namespace, site) -> None:
    from django.db import transaction

    from tests.integration.live_fixtures import Stack, free_port
    from workflows.conf import live as live_setting
    from workflows.engine import appends, publication

    run, cookie = site.run, site.cookie
    stack = Stack(env=dict(os.environ), log_dir=site.work)
    port = free_port()
    try:
        stack.daphne(port)
        total = args.warmup + args.events
        client = subprocess.Popen(
            [sys.executable, __file__, "--client", str(port), cookie, str(run.pk), str(total)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdout.readline().strip() == "ready"
        committed: dict[int, float] = {}
        publish_hold: dict[int, float] = {}
        interval = 1 / args.rate if args.rate else 0
        started = time.monotonic()
        held_for = live_setting("HOLD_SECONDS") if args.held else 0
        with publication.holding(held_for):  # a worker's job holds its transitions' publications this way
            for i in range(total):
                if interval:
                    time.sleep(max(0.0, started + i * interval - time.monotonic()))
                with transaction.atomic():
                    transaction.on_commit(lambda i=i: committed.__setitem__(i, time.monotonic()))
                    appends.record(run.pk, "bench", "", i=i)
                publish_hold[i] = time.monotonic() - committed[i]
        elapsed = time.monotonic() - started
        out, _ = client.communicate(timeout=120)
        received = {int(i): float(t) for i, t in (line.split() for line in out.splitlines() if line.strip())}
    finally:
        stack.stop_all(show_logs=False)

    measured = range(args.warmup, total)
    missing = [i for i in measured if i not in received]
    latency = [(received[i] - committed[i]) * 1000 for i in measured if i in received]
    hold = [publish_hold[i] * 1000 for i in measured]

    def row(name: str, values: list[float]) -> str:
        cells = [percentile(values, p) for p in (50, 90, 99)] + [max(values), statistics.fmean(values)]
        return f"| {name} | " + " | ".join(f"{v:.2f}" for v in cells) + " |"

    print(
        f"\n{len(latency)} events measured ({args.warmup} warm-up), {args.rate or 'max'} events/s offered, "
        f"{total / elapsed:.0f}/s achieved; {len(missing)} missing; publications held up to {held_for * 1000:g} ms. "
        "Real daphne, Redis on a unix socket, SQLite; "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}.\n"
    )
    print("| ms | p50 | p90 | p99 | max | mean |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(row("commit → client has the frame", latency))
    print(row("publication after commit (the committer waits)", hold))
    if missing:
        sys.exit(f"{len(missing)} events never reached the client")


if __name__ == "__main__":
    main()
