"""Workflows for the observability tests (traces, metrics, log lines): a step that logs and makes its own span."""

import logging

from pydantic import BaseModel

from workflows import StepContext, Workflow, step

user_log = logging.getLogger("tests.observe")


class Num(BaseModel):
    value: int


@step(pool="narrow")
def observed_work(ctx: StepContext, data: Num) -> Num:
    """Logs through a logger of its own and through ``ctx.log``, inside a span of its own (OTel, if installed)."""
    try:
        from opentelemetry import trace
    except ImportError:  # the otel extra is optional
        trace = None
    if trace is not None:
        with trace.get_tracer("tests.observe").start_as_current_span("user work") as span:
            span.set_attribute("value", data.value)
    user_log.warning("user line for %s", data.value)
    ctx.log("ctx line")
    return Num(value=data.value + 1)


@step(retries=0)
def observed_failure(ctx: StepContext, data: Num) -> Num:
    raise ValueError(f"no good: {data.value}")


@step
def observed_items(ctx: StepContext, data: Num) -> list[Num]:
    return [Num(value=i) for i in range(data.value)]


observed = Workflow("observed", input=Num, output=Num).then(observed_work).commit()
observed_failing = Workflow("observed-failing", input=Num).then(observed_work).then(observed_failure).commit()
observed_many = Workflow("observed-many", input=Num).then(observed_items).foreach(observed_work, concurrency=3).commit()
