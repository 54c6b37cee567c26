"""The benchmark's workflows (discovered in ``bench.settings`` processes, like any app's ``flows.py``).

Every step is a no-op: the figures measure the engine, not user code. The ``stamp`` steps also return the
wall-clock time at which their body started and returned, so that the handoff from one step's return to the
next step's start can be measured from user code's point of view too (same machine, same clock).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from workflows import StepContext, Workflow, step


class Num(BaseModel):
    value: int


class Size(BaseModel):
    n: int


def _noop(ctx: StepContext, data: Num) -> Num:
    return data


def key_of(c) -> str:
    """The ``bench_keyed`` pool's concurrency key (bench.admission): one of 1,000 tenants."""
    return f"tenant-{c.data.value}"


def _stamp(ctx: StepContext, data: dict) -> dict:
    began = time.time()
    return {"i": data.get("i", 0) + 1, "began": began, "returned": time.time()}


def _item(ctx: StepContext, data: int) -> int:
    return data


def _chain(name: str, length: int, fn) -> Workflow:
    flow = Workflow(name, input=Num if fn is _noop else dict, description=f"{length} no-op steps in a row")
    for i in range(1, length + 1):
        flow = flow.then(step(fn, id=f"{fn.__name__.strip('_')}{i}"))
    return flow.commit()


noop5 = _chain("bench-noop5", 5, _noop)  # throughput: 5-step no-op chain
stamp5 = _chain("bench-stamp5", 5, _stamp)  # handoff latency
noop10 = _chain("bench-noop10", 10, _noop)  # per-step overhead of a short chain

item = step(_item, id="item")
fanout = (  # per-step overhead of a big foreach: {"n": 1000} -> 1000 items, 10 at once (the pool's limit)
    Workflow("bench-foreach", input=Size, description="a foreach of n no-op items")
    .map(lambda c: list(range(c.data.n)), id="items")
    .foreach(item, concurrency=10)
    .commit()
)


def _pass(ctx: StepContext, data: Any) -> Any:
    return data


pass10 = Workflow("bench-pass10", description="10 steps passing their input along (storage amplification)")
for _i in range(1, 11):
    pass10 = pass10.then(step(_pass, id=f"pass{_i}"))
pass10 = pass10.commit()

tick = step(_noop, id="tick")
loop = (  # storage: a run of exactly n sequential steps (one row per iteration)
    Workflow("bench-loop", input=Num, description="n no-op steps in a loop")
    .dountil(tick, lambda c: c.iteration >= c.run_input.value, max_iterations=100_000)
    .commit()
)

# admission with and without concurrency keys (bench.admission)
Workflow("bench-admit-plain", input=Num).then(step(_noop, id="admit_plain", pool="bench_plain")).commit()
Workflow("bench-admit-keyed", input=Num).then(step(_noop, id="admit_keyed", pool="bench_keyed")).commit()


# --- bench.compare: the same workflows on two pools, served by workers that differ only in EAGER_SECONDS ------
MODES = {"step": "bench_step", "eager": "bench_eager"}  # mode -> pool (queue: the pool's name with a dash)


def _sleep(ctx: StepContext, data: Any) -> Any:
    time.sleep(0.05)  # a 50 ms I/O wait (an API call, a query)
    return data


def _pooled(name: str, length: int, fn, pool: str, input: Any = Num) -> Workflow:
    flow = Workflow(name, input=input, description=f"{length} × {fn.__name__} on pool {pool}")
    for i in range(1, length + 1):
        flow = flow.then(step(fn, id=f"{fn.__name__.strip('_')}{i}", pool=pool))
    return flow.commit()


NOOP5 = {mode: _pooled(f"bench-{mode}-noop5", 5, _noop, pool) for mode, pool in MODES.items()}
STAMP5 = {mode: _pooled(f"bench-{mode}-stamp5", 5, _stamp, pool, dict) for mode, pool in MODES.items()}
IO_CHAIN = {mode: _pooled(f"bench-{mode}-io20", 20, _sleep, pool) for mode, pool in MODES.items()}
IO_FOREACH = {  # input: the list of items; each item sleeps 50 ms; 10 at once (the pool's limit)
    mode: Workflow(f"bench-{mode}-io-foreach", input=list[int], description="a foreach of 50 ms items")
    .foreach(step(_sleep, id="io_item", pool=pool), concurrency=10)
    .commit()
    for mode, pool in MODES.items()
}
