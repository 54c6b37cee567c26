"""Values are stored once: a step's input refers to the output it came from, journal events carry references and
sizes, large values are fetched on demand; outputs and event payloads are capped (both databases)."""

from __future__ import annotations

import pytest

from bench.storage import json_bytes, table_bytes, value_of_size
from tests.invariants import row_counts
from tests.testapp import storage_flows as sf
from workflows import InvalidInput
from workflows.models import Run, RunEvent, StepRun
from workflows.testing import drain

pytestmark = pytest.mark.usefixtures("engine_db")

MB = 1_000_000
BIG = 100_000  # over INLINE_VALUE_BYTES (16 KiB): stored once


def finished(run: Run) -> Run:
    drain()
    run.refresh_from_db()
    return run


def test_ratio__a_10_step_chain_passing_1_mb_along_stores_at_most_2_bytes_per_byte_of_input():
    value = value_of_size(MB)
    before = table_bytes()
    run = finished(sf.pass10.start(value))
    assert run.status == "succeeded"
    assert run.output == value  # the public API returns the value
    stored = json_bytes(run.pk)
    print(f"\nstored {stored:,} B of JSON for {MB:,} B of input: {stored / MB:.2f}x; tables grew by "
          f"{table_bytes() - before:,} B")  # fmt: skip
    assert stored / MB <= 2  # was 34x: the input in each step's input and output, and in the journal
    assert Run.objects.filter(pk=run.pk).values_list("output", flat=True)[0] is None  # a reference, not a copy


def test_ref__a_steps_input_is_a_reference_yet_the_step_and_ctx_see_the_value():
    value = value_of_size(BIG)
    run = finished(sf.seen.start(value))
    assert run.status == "succeeded", run.error
    assert run.output == {"same_as_first": True, "run_input_same": True, "value": value}
    rows = {r.path: r for r in StepRun.objects.filter(run=run)}
    assert rows["pass1"].input is None and rows["pass1"].input_ref == 0  # the run's input
    assert rows["pass2"].input is None and rows["pass2"].input_ref == 0
    assert rows["pass2"].output is None and rows["pass2"].output_ref == 0  # it passed the input along
    step = run.step("pass2")  # the public API gives values
    assert step.input == value and step.output == value


def test_ref__small_values_stay_inline():
    run = finished(sf.pass10.start({"x": 1}))
    assert run.output == {"x": 1}
    row = StepRun.objects.get(run=run, path="pass3")
    assert (row.input, row.input_ref, row.output, row.output_ref) == ({"x": 1}, None, {"x": 1}, None)
    assert RunEvent.objects.get(run=run, kind="step_succeeded", step="pass3").data["output"] == {"x": 1}


@pytest.mark.parametrize("eager", [1.0, 0.0], ids=["run-at-once", "queued-and-claimed"])
def test_ref__a_new_large_output_is_stored_once_and_the_next_step_refers_to_it(settings, eager):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "EAGER_SECONDS": eager}  # 0: each step claimed from its RQ job
    value = value_of_size(BIG)
    run = finished(sf.grows.start(value))
    assert run.status == "succeeded"
    grow, keep = StepRun.objects.get(run=run, path="grow"), StepRun.objects.get(run=run, path="keep")
    assert grow.output == {"blob": value["blob"] * 2} and grow.output_ref is None
    assert keep.input is None and keep.input_ref == grow.pk
    assert keep.output is None and keep.output_ref == grow.pk
    assert run.output == grow.output
    assert json_bytes(run.pk) < 3.2 * BIG  # the input once, the grown value once


def test_ref__every_block_kind_retry_and_nesting_pass_a_large_value_along():
    value = value_of_size(BIG)
    run = finished(sf.shapes.start(value))
    assert run.status == "succeeded", run.error
    assert run.output == value
    flaky = list(StepRun.objects.filter(run=run, path="flaky").order_by("attempt"))
    assert [r.status for r in flaky] == ["failed", "succeeded"]
    assert all(r.input is None and r.input_ref == 0 for r in flaky)  # the retry refers to the same input
    assert StepRun.objects.get(run=run, path="nap").output_ref == 0
    assert StepRun.objects.get(run=run, path="left").input_ref == 0
    child = Run.objects.get(parent_step__run=run)
    assert child.output == value


def test_ref__restart_from_a_step_refers_to_its_own_rows_and_succeeds():
    value = value_of_size(BIG)
    source = finished(sf.pass10.start(value))
    again = finished(source.restart("pass6"))
    assert again.status == "succeeded" and again.output == value
    ids = set(StepRun.objects.filter(run=again).values_list("pk", flat=True))
    refs = StepRun.objects.filter(run=again).values_list("input_ref", "output_ref")
    assert all(ref in ids or ref in (0, None) for pair in refs for ref in pair)
    assert json_bytes(again.pk) < 2 * BIG


def test_journal__a_large_output_is_a_reference_with_its_size_and_the_value_endpoint_returns_it(api, user):
    value = value_of_size(BIG)
    run = finished(sf.seen.start(value, user=user))
    event = RunEvent.objects.get(run=run, kind="step_succeeded", step="pass1")
    ref = event.data["output"]
    assert set(ref) == {"$ref", "bytes"} and ref["bytes"] == len(__import__("json").dumps(value))
    created = RunEvent.objects.get(run=run, kind="run_created").data["input"]
    assert created["$ref"] == "input"
    for where in (ref["$ref"], created["$ref"], "output"):
        answer = api.get(f"/api/runs/{run.pk}/values/{where}")
        assert answer.status_code == 200, answer.content[:200]
        assert answer.json()["value"] == (run.output if where == "output" else value)
    step = api.get(f"/api/runs/{run.pk}/steps/pass2/").json()["attempts"][0]
    assert step["input"] == {"$ref": f"steps/{step['id']}/input", "bytes": ref["bytes"]}
    assert api.get(f"/api/runs/{run.pk}/values/{step['input']['$ref']}").json()["value"] == value
    assert api.get(f"/api/runs/{run.pk}/values/steps/999999/output").status_code == 404
    assert api.get(f"/api/runs/{run.pk}/values/nothing").status_code == 404


def test_journal__the_value_endpoint_is_404_for_another_user_and_needs_login(client, user, django_user_model):
    run = finished(sf.seen.start(value_of_size(BIG), user=user))
    where = RunEvent.objects.get(run=run, kind="step_succeeded", step="pass1").data["output"]["$ref"]
    url = f"/api/runs/{run.pk}/values/{where}"
    assert client.get(url).status_code in (401, 403)
    client.force_login(django_user_model.objects.create_user("bob", password="pw-bob-12345"))
    assert client.get(url).status_code == 404


def test_page__the_run_page_shows_a_large_value_on_demand(api, user):
    run = finished(sf.pass10.start(value_of_size(BIG), user=user))
    page = api.get(f"/runs/{run.pk}/").content.decode()
    assert f'data-value-url="/api/runs/{run.pk}/values/input"' in page
    assert f'data-value-url="/api/runs/{run.pk}/values/output"' in page
    assert "100.0 kB" in page  # its size, as the step panel writes it
    assert len(page) < BIG  # neither the input nor the output is in the page


def test_cap__an_output_over_max_output_bytes_fails_the_step_once_and_stores_nothing(settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "MAX_OUTPUT_BYTES": 50_000}
    run = finished(sf.shapes.start(value_of_size(60_000)))
    assert run.status == "failed"
    assert run.error["type"] == "OutputTooLarge" and "MAX_OUTPUT_BYTES" in run.error["message"]
    rows = list(StepRun.objects.filter(run=run, path="flaky").order_by("attempt"))
    # attempt 1 raised (retried), attempt 2 returned too much: failed at once, not retried, nothing stored
    assert [(r.status, (r.error or {}).get("type")) for r in rows] == [
        ("failed", "RuntimeError"), ("failed", "OutputTooLarge")]  # fmt: skip
    assert rows[1].output is None and rows[1].output_ref is None
    failed = RunEvent.objects.filter(run=run, kind="step_failed", step="flaky").order_by("seq").last()
    assert failed.data["error"]["type"] == "OutputTooLarge"


def test_cap__an_event_over_max_event_bytes_is_invalid_input_and_changes_nothing(api, user, settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "MAX_EVENT_BYTES": 1000}
    run = finished(sf.wait_big.start({"x": 1}, user=user))
    assert run.status == "waiting"
    before = row_counts()
    with pytest.raises(InvalidInput, match="MAX_EVENT_BYTES"):
        run.send_event("go", value_of_size(2000))
    answer = api.post(f"/api/runs/{run.pk}/send-event/", {"name": "go", "data": value_of_size(2000)},
                      content_type="application/json")  # fmt: skip
    assert answer.status_code == 400 and "MAX_EVENT_BYTES" in answer.json()["error"]
    assert row_counts() == before
    run.send_event("go", {"small": True})
    assert finished(run).status == "succeeded"
