"""Admission overhead with 1,000 distinct concurrency keys (in this process: no workers, admission alone).

Steps are created pending while their pool is paused (so nothing is admitted on the way), then admission
passes (``engine.admit``, exactly what the pump after commit and the recovery loop call) are timed:

- plain: ``keys × 2`` pending steps without a key in a pool of 10 slots; each pass admits 10, which are then
  marked succeeded by a direct UPDATE (a completion's admission work, without the rest of the completion).
- keyed: the same with ``keys`` distinct keys (two steps each, ``key_limit=1``): the difference is what keys cost.
- blocked: ``keys`` keys each at its limit and ``keys`` more steps of those keys pending, in a pool with free
  slots: one pass that admits nothing, passing over every waiting step (the worst case for a key's filter).

The live layer's publication of the ``step_queued`` events after commit is left out (its sinks are
disconnected while passes are timed): it is the same with and without keys, and is most of a pass's time.
"""

from __future__ import annotations

import statistics
import sys
import time


def say(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def run(params: dict) -> dict:
    keys = int(params.get("keys", 1000))
    reps = int(params.get("reps", 3))
    passes = int(params.get("passes", 20))
    result: dict = {"keys": keys, "plain": [], "keyed": [], "blocked": []}
    for rep in range(reps):
        result["plain"].append(_passes("bench-admit-plain", "bench_plain", keys, passes))
        result["keyed"].append(_passes("bench-admit-keyed", "bench_keyed", keys, passes))
        result["blocked"].append(_blocked(keys))
        say(f"rep {rep + 1}: plain {result['plain'][-1]:.2f} ms/pass, keyed {result['keyed'][-1]:.2f} ms/pass, "
            f"blocked {result['blocked'][-1]:.2f} ms/pass")  # fmt: skip
    return result


def _fill(flow_name: str, pool: str, keys: int) -> None:
    from workflows.definition import registry
    from workflows.engine import pool_control

    pool_control.pause(pool)
    flow = registry.get(flow_name)
    for i in range(keys * 2):
        flow.start({"value": i % keys})
    pool_control.resume(pool)  # admits its first pass: not timed


def _clear(pool: str) -> None:
    from workflows.models import Run, StepRun

    Run.objects.filter(pk__in=StepRun.objects.filter(pool=pool).values("run_id")).delete()


def _finish_held(pool: str) -> None:
    from workflows.models import STEP_HOLDS_SLOT, StepRun

    StepRun.objects.filter(pool=pool, status__in=STEP_HOLDS_SLOT).update(status="succeeded")


class _Unpublished:
    """No live publication while passes are timed."""

    def __enter__(self) -> None:
        from workflows.engine import publication

        self.sinks = list(publication._sinks)
        publication._sinks.clear()

    def __exit__(self, *exc) -> None:
        from workflows.engine import publication

        publication._sinks[:] = self.sinks


def _passes(flow_name: str, pool: str, keys: int, passes: int) -> float:
    """Median ms of an admission pass that fills the pool's 10 free slots."""
    from workflows import engine

    _clear(pool)
    _fill(flow_name, pool, keys)
    times = []
    with _Unpublished():
        for _ in range(passes):
            _finish_held(pool)
            began = time.perf_counter()
            admitted = engine.admit(pool)
            times.append((time.perf_counter() - began) * 1000)
            assert len(admitted) == 10, admitted
    _clear(pool)
    return statistics.median(times)


def _blocked(keys: int) -> float:
    """ms of one pass over ``keys`` waiting steps whose keys are all at their limit (admits none)."""
    from workflows import engine
    from workflows.engine import pool_control

    pool = "bench_keyed"
    _clear(pool)
    pool_control.set_limit(pool, keys * 3)
    try:
        _fill("bench-admit-keyed", pool, keys)  # the resume admitted one step per key
        times = []
        with _Unpublished():
            for _ in range(5):
                began = time.perf_counter()
                admitted = engine.admit(pool)
                times.append((time.perf_counter() - began) * 1000)
                assert admitted == [], admitted
    finally:
        pool_control.set_limit(pool, None)
        _clear(pool)
    return statistics.median(times)
