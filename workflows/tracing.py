"""OpenTelemetry traces: a run is a trace, with a span per step attempt and one for the whole run.

Off, and free, unless ``opentelemetry-api`` is installed (the ``otel`` extra) and the project has configured a
tracer provider (the OTel SDK, an exporter): otherwise each function returns at once.

A run's steps run in other processes (RQ jobs carry only a StepRun id), so the trace context travels in the
database: starting a run records a short ``workflow.start <name>`` span, a child of whatever span is current (an
HTTP request's, a parent step's), and stores its W3C ``traceparent`` in the run's ``run_created`` journal event.
Every step attempt (``workflow.step <path>``, made by the runtime around the attempt) and the run's own span
(``workflow.run <name>``, emitted when the run ends, from the run's creation time to its end) are children of it,
in whichever process they happen. The step span is current while the step body runs, so the spans that the user's
code and its instrumented libraries make (HTTP clients, Django, LLM calls) nest under the step.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .store.models import Run, RunEvent, StepRun
from .store.statements import workflow_name

try:
    from opentelemetry import trace
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the otel extra is not installed: tracing is off
    trace = None

RUN_ENDS = {"run_succeeded": "succeeded", "run_failed": "failed", "run_canceled": "canceled"}


def enabled() -> bool:
    """Is a tracer provider configured (rather than the API's no-op default)?"""
    return trace is not None and not isinstance(trace.get_tracer_provider(), ProxyTracerProvider | NoOpTracerProvider)


def _tracer() -> Any:
    return trace.get_tracer("workflows")


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


def run_created(run: Run, workflow: str) -> dict[str, Any]:
    """Record the run's start span; the data to store in its ``run_created`` event (``{}`` when tracing is off)."""
    if not enabled():
        return {}
    attributes = {"workflows.workflow": workflow, "workflows.version": run.version, "workflows.run_id": run.pk}
    with _tracer().start_as_current_span(f"workflow.start {workflow}", kind=SpanKind.PRODUCER, attributes=attributes):
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
    return {"trace": carrier} if carrier else {}


@functools.lru_cache(maxsize=1024)
def _carrier(run_id: int, created_at: datetime) -> tuple[tuple[str, str], ...]:
    """The run's stored trace context (keyed by creation time too: a test database may reuse an id)."""
    data = RunEvent.objects.filter(run_id=run_id, kind="run_created").order_by("seq").values_list("data", flat=True)
    carrier = ((data.first() or {}).get("trace")) or {}
    return tuple(sorted((str(k), str(v)) for k, v in carrier.items()))


def parent(run: Run) -> Any:
    """The OTel context the run's spans are children of (an empty one if the run started untraced)."""
    return TraceContextTextMapPropagator().extract(dict(_carrier(run.pk, run.created_at)))


@contextlib.contextmanager
def step_span(sr: StepRun) -> Iterator[Any]:
    """The current span for one step attempt (None when tracing is off); ``end_step`` sets its outcome."""
    if not enabled():
        yield None
        return
    run = sr.run
    attributes = {
        "workflows.workflow": workflow_name(run), "workflows.version": run.version, "workflows.run_id": run.pk,
        "workflows.step": sr.path, "workflows.attempt": sr.attempt, "workflows.pool": sr.pool,
    }  # fmt: skip
    with _tracer().start_as_current_span(
        f"workflow.step {sr.path}", context=parent(run), kind=SpanKind.CONSUMER, attributes=attributes,
        record_exception=False, set_status_on_exception=False,
    ) as span:  # fmt: skip
        yield span


def end_step(span: Any, status: str, error: BaseException | str | None = None) -> None:
    """The attempt ended with ``status`` (succeeded, failed, suspended, canceled, interrupted) and ``error``."""
    if span is None:
        return
    span.set_attribute("workflows.status", status)
    if error is not None:
        kind = error if isinstance(error, str) else type(error).__name__
        span.set_attribute("error.type", kind)
        if isinstance(error, BaseException):
            span.record_exception(error)
    if status == "failed":
        span.set_status(Status(StatusCode.ERROR, str(error) if error is not None else None))
    elif status == "succeeded":
        span.set_status(Status(StatusCode.OK))


def publish(events: list[RunEvent]) -> None:
    """Publication sink: a run that ended gets its span, from its creation to its end."""
    if not enabled():
        return
    for event in events:
        if event.kind in RUN_ENDS:
            _run_span(event.run, RUN_ENDS[event.kind], event)


def _run_span(run: Run, status: str, event: RunEvent) -> None:
    name = workflow_name(run)
    attributes = {
        "workflows.workflow": name, "workflows.version": run.version, "workflows.run_id": run.pk,
        "workflows.status": status,
    }  # fmt: skip
    error = (event.data or {}).get("error") or {}
    if error.get("type"):
        attributes["error.type"] = error["type"]
        attributes["workflows.step"] = error.get("step") or ""
    span = _tracer().start_span(
        f"workflow.run {name}", context=parent(run), kind=SpanKind.INTERNAL, attributes=attributes,
        start_time=_ns(run.created_at),
    )  # fmt: skip
    if status == "failed":
        span.set_status(Status(StatusCode.ERROR, error.get("message")))
    elif status == "succeeded":
        span.set_status(Status(StatusCode.OK))
    span.end(end_time=max(_ns(event.at), _ns(run.created_at)))
