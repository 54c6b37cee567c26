"""Raw RQ, for comparison: the same no-op work as plain RQ jobs, enqueued the way the engine enqueues steps.

Imported by plain ``rq worker`` processes: no Django here.
"""

from __future__ import annotations

import time

QUEUE = "bench-raw"


def noop(i: int) -> None:
    """The job: nothing."""


def done_count(conn, names: list[str]) -> int:
    """Jobs the named workers have finished successfully (RQ keeps the count in each worker's hash)."""
    return sum(int(conn.hget(f"rq:worker:{name}", "successful_job_count") or 0) for name in names)


def measure(conn, names: list[str], jobs: int, timeout: float = 300) -> float:
    """Enqueue ``jobs`` no-op jobs one by one (JSON, job_timeout=-1, result_ttl=0, like ``dispatch.enqueue``);
    return the seconds from the first enqueue until the workers have finished them all."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    queue = Queue(QUEUE, connection=conn, serializer=JSONSerializer)
    before = done_count(conn, names)
    started = time.perf_counter()
    for i in range(jobs):
        queue.enqueue("bench.rawrq.noop", i, job_timeout=-1, result_ttl=0, failure_ttl=86400)
    deadline = started + timeout
    while done_count(conn, names) - before < jobs:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"raw RQ: {done_count(conn, names) - before}/{jobs} jobs done after {timeout}s")
        time.sleep(0.002)
    return time.perf_counter() - started


def noops(n: int) -> None:
    """The job of the eager comparison: ``n`` no-ops in one job, as an eager run does ``n`` steps in one job."""
    for i in range(n):
        noop(i)


def sleep50(i: int) -> None:
    """A 50 ms I/O wait, like ``bench.flows._sleep``."""
    time.sleep(0.05)


def measure_jobs(conn, names: list[str], func: str, args: list[tuple], timeout: float = 300) -> float:
    """Like ``measure`` for any job function: one job per tuple of ``args``; seconds until all are done."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    queue = Queue(QUEUE, connection=conn, serializer=JSONSerializer)
    before = done_count(conn, names)
    started = time.perf_counter()
    for a in args:
        queue.enqueue(func, *a, job_timeout=-1, result_ttl=0, failure_ttl=86400)
    deadline = started + timeout
    while done_count(conn, names) - before < len(args):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"raw RQ: {done_count(conn, names) - before}/{len(args)} jobs after {timeout}s")
        time.sleep(0.002)
    return time.perf_counter() - started


def stamp(url: str, key: str) -> None:
    """The job of the handoff comparison: record when its body starts (wall clock, in Redis)."""
    import redis

    redis.Redis.from_url(url).set(key, repr(time.time()))


def start_latency(conn, url: str, samples: int = 30, timeout: float = 60) -> list[float]:
    """Milliseconds from enqueueing a job to its body starting, on idle raw RQ workers: RQ's own handoff."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    queue = Queue(QUEUE, connection=conn, serializer=JSONSerializer)
    out = []
    for i in range(samples):
        key = f"bench-start-latency-{i}-{time.monotonic_ns()}"
        sent = time.time()
        queue.enqueue("bench.rawrq.stamp", url, key, job_timeout=-1, result_ttl=0)
        deadline = time.monotonic() + timeout
        while (at := conn.get(key)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError("raw RQ: a stamp job did not start")
            time.sleep(0.0005)
        out.append((float(at) - sent) * 1000)
        conn.delete(key)
        time.sleep(0.05)  # the workers are idle again, as in the handoff measure
    return out
