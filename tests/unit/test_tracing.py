"""OpenTelemetry traces of runs, with the SDK's in-memory exporter and real in-process workers (``drain``)."""

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402
from opentelemetry.util._once import Once  # noqa: E402

from tests.testapp import observe_flows  # noqa: E402
from workflows import tracing  # noqa: E402
from workflows.models import RunEvent  # noqa: E402
from workflows.testing import drain  # noqa: E402


@pytest.fixture
def spans():
    """A global SDK tracer provider exporting to memory for this test; the API's globals reset afterwards (what
    opentelemetry's own test utilities do), so that other tests run untraced."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER = None
        trace._TRACER_PROVIDER_SET_ONCE = Once()


def by_name(exporter, name):
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert found, f"no span {name!r} in {[s.name for s in exporter.get_finished_spans()]}"
    return found


def test_tracing__a_step_s_own_span_nests_under_its_step_span_in_the_run_s_trace(engine_db, spans):
    run = observe_flows.observed.start({"value": 1})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"

    (start,) = by_name(spans, "workflow.start observed")
    (step,) = by_name(spans, "workflow.step observed_work")
    (user,) = by_name(spans, "user work")
    (whole,) = by_name(spans, "workflow.run observed")
    trace_id = start.context.trace_id
    assert {s.context.trace_id for s in (step, user, whole)} == {trace_id}  # one trace, across the RQ hop
    assert user.parent.span_id == step.context.span_id  # the user's span is the step span's child
    assert step.parent.span_id == start.context.span_id and whole.parent.span_id == start.context.span_id
    assert step.attributes["workflows.workflow"] == "observed"
    assert step.attributes["workflows.version"] == run.version
    assert step.attributes["workflows.step"] == "observed_work"
    assert step.attributes["workflows.attempt"] == 1
    assert step.attributes["workflows.pool"] == "narrow"
    assert step.attributes["workflows.status"] == "succeeded"
    assert step.attributes["workflows.run_id"] == run.pk
    assert step.status.status_code == StatusCode.OK
    assert whole.start_time == int(run.created_at.timestamp() * 1e9)  # the run's span covers the whole run
    assert whole.end_time >= user.end_time
    assert whole.attributes["workflows.status"] == "succeeded"
    stored = RunEvent.objects.get(run=run, kind="run_created").data["trace"]  # the context travels in the database
    assert stored["traceparent"].split("-")[1] == format(trace_id, "032x")


def test_tracing__a_failed_step_s_span_has_error_status_and_type(engine_db, spans):
    run = observe_flows.observed_failing.start({"value": 2})
    drain()
    run.refresh_from_db()
    assert run.status == "failed"

    (failed,) = by_name(spans, "workflow.step observed_failure")
    assert failed.status.status_code == StatusCode.ERROR
    assert "no good: 3" in failed.status.description
    assert failed.attributes["error.type"] == "ValueError"
    assert failed.attributes["workflows.status"] == "failed"
    assert any(e.name == "exception" for e in failed.events)
    (whole,) = by_name(spans, "workflow.run observed-failing")
    assert whole.status.status_code == StatusCode.ERROR
    assert whole.attributes["error.type"] == "ValueError"
    assert whole.attributes["workflows.step"] == "observed_failure"


def test_tracing__a_run_started_inside_a_span_joins_its_trace(engine_db, spans):
    with trace.get_tracer("tests").start_as_current_span("request") as request:
        observe_flows.observed.start({"value": 1})
    drain()
    (start,) = by_name(spans, "workflow.start observed")
    (step,) = by_name(spans, "workflow.step observed_work")
    assert start.parent.span_id == request.get_span_context().span_id
    assert step.context.trace_id == request.get_span_context().trace_id


def test_tracing__off_without_a_configured_provider(engine_db):
    assert not tracing.enabled()
    run = observe_flows.observed.start({"value": 1})
    drain()
    assert "trace" not in RunEvent.objects.get(run=run, kind="run_created").data
