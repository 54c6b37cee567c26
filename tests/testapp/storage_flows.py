"""Workflows of the storage tests: a chain of 10 steps passing their input along, and smaller shapes."""

from typing import Any

from workflows import StepContext, Workflow, step


def _pass(ctx: StepContext, data: Any) -> Any:
    return data


def _seen(ctx: StepContext, data: Any) -> Any:
    """What the step saw: its input and ``ctx.result`` of the first step, measured, and the value itself."""
    first = ctx.result("pass1")
    return {"same_as_first": first == data, "run_input_same": ctx.run_input == data, "value": data}


def chain(name: str, length: int, last=None) -> Workflow:
    flow = Workflow(name, description=f"{length} steps passing their input along")
    for i in range(1, length + 1):
        flow = flow.then(step(_pass, id=f"pass{i}"))
    if last is not None:
        flow = flow.then(last)
    return flow.commit()


pass10 = chain("pass10", 10)
seen = chain("pass-seen", 2, step(_seen, id="seen"))


def _flaky(ctx: StepContext, data: Any) -> Any:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return data


def _grow(ctx: StepContext, data: Any) -> Any:
    return {"blob": data["blob"] * 2}


def _pass_list(ctx: StepContext, data: list) -> list:
    return data


# retries, sleep, a branch, a nested workflow, a loop, a map and a foreach: each passes the value along
shapes = (
    Workflow("pass-shapes", description="a large value through every kind of block")
    .then(step(_flaky, id="flaky", retries=1, backoff=0.01))
    .sleep(0, id="nap")
    .parallel([step(_pass, id="left"), step(_pass, id="right")])
    .map(lambda c: c.data["left"], id="pick")
    .branch([(lambda c: True, step(_pass, id="taken"))])
    .map(lambda c: c.data["taken"], id="unwrap")
    .then(pass10)
    .dountil(step(_pass, id="again"), lambda c: c.iteration >= 3)
    .map(lambda c: [c.data, c.data], id="twice")
    .foreach(step(_pass, id="each"), concurrency=2)
    .then(step(_pass_list, id="after"))
    .map(lambda c: c.data[0], id="first")
    .commit()
)
grows = Workflow("pass-grow").then(step(_grow, id="grow")).then(step(_pass, id="keep")).commit()
wait_big = Workflow("pass-wait").then(step(_pass, id="before")).wait_for_event("go").commit()
