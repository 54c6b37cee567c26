"""Workflows with completion hooks (``on_success``/``on_failure``/``on_finish``) and the steps they run.

Every step records its executions in ``StepExecution`` (``chaos_flows.record``), so tests can count how often a
hook's body ran, in process or in real workers that crash; a hook returns what it received, so its StepRun's
output shows the data it was given.
"""

from pydantic import BaseModel

from workflows import NonRetryableError, StepContext, Workflow, step

from .chaos_flows import RETRIES, Pace, record


class Outcome(BaseModel):
    status: str
    output: dict | None = None
    error: dict | None = None


@step(retries=RETRIES, backoff=0.05)
def hk_body(ctx: StepContext, data: Pace) -> Pace:
    """Fails for good on a negative value; lingers ``pause`` seconds (so a test can cancel it mid-step)."""
    record(ctx, data)
    if data.value < 0:
        raise NonRetryableError(f"negative value {data.value}")
    return Pace(value=data.value + 1, pause=data.pause)


@step(retries=RETRIES, backoff=0.05)
def hk_success(ctx: StepContext, data: Pace) -> Pace:
    record(ctx, data)  # lingers as long as the body did
    return data


@step(retries=RETRIES, backoff=0.05)
def hk_failure(ctx: StepContext, data: dict) -> dict:
    record(ctx, Pace(value=0))
    return data


@step(retries=RETRIES, backoff=0.05)
def hk_finish(ctx: StepContext, data: Outcome) -> Outcome:
    record(ctx, Pace(value=0))
    return data


hooked = (
    Workflow("hooked", input=Pace, output=Pace, on_success=hk_success, on_failure=hk_failure, on_finish=hk_finish)
    .then(hk_body)
    .commit()
)


@step(retries=1, backoff=0.01)
def hk_flaky(ctx: StepContext, data: Pace) -> Pace:
    """A hook that fails its first attempt (a retry runs it again) or, on value 99, every attempt."""
    record(ctx, Pace(value=0), planned_failure=ctx.attempt == 1 or data.value == 99)
    if ctx.attempt == 1 or data.value == 99:
        raise ConnectionError(f"hook attempt {ctx.attempt} failed on purpose")
    return data


flaky_hook = Workflow("flaky-hook", input=Pace, output=Pace, on_success=hk_flaky).then(hk_body).commit()


@step
def hk_child_step(ctx: StepContext, data: Outcome) -> dict:
    record(ctx, Pace(value=0))
    return {"seen": data.status}


hook_child = Workflow("hook-child", input=Outcome).then(hk_child_step).commit()
nested_hook = Workflow("nested-hook", input=Pace, on_finish=hook_child).then(hk_body).commit()


@step
def hk_suspends(ctx: StepContext, data: Pace) -> Pace:
    ctx.suspend({"why": "a hook may not"})
    return data


suspending_hook = Workflow("suspending-hook", input=Pace, on_success=hk_suspends).then(hk_body).commit()

sleeping_hooked = Workflow("sleeping-hooked", input=Pace, on_failure=hk_failure, on_finish=hk_finish).sleep(60)
sleeping_hooked = sleeping_hooked.then(hk_body).commit()
