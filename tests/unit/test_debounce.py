"""Debounced starts (``flow.start(data, debounce=(key, seconds))``): one run with the last input, durable timer."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.testapp import flows
from workflows import InvalidInput, engine
from workflows.live import sender
from workflows.models import Debounce, Run, RunEvent
from workflows.testing import drain


def runs_of(flow) -> list[Run]:
    return list(Run.objects.filter(workflow__name=flow.name).order_by("pk"))


def due_now(run: Run) -> None:
    """Make the run's debounce window pass (its due time is only a database value)."""
    Debounce.objects.filter(run=run).update(due_at=timezone.now() - timedelta(seconds=1))


def test_debounce__starts_within_the_window_are_one_run_with_the_last_input(engine_db):
    first = flows.counter.start({"value": 1}, debounce=("k", 60))
    second = flows.counter.start({"value": 10}, debounce=("k", 60))
    third = flows.counter.start({"value": 100}, debounce=("k", 60))

    assert first.pk == second.pk == third.pk and len(runs_of(flows.counter)) == 1
    assert third.status == "pending" and not third.steps.exists()  # waiting for its window: nothing runs
    drain(timeout=1)
    assert Run.objects.get(pk=first.pk).status == "pending"
    due_now(first)
    drain(timeout=20)
    run = Run.objects.get(pk=first.pk)
    assert run.status == "succeeded" and run.input == {"value": 100} and run.output == {"value": 102}
    kinds = list(run.events.order_by("seq").values_list("kind", flat=True))
    assert kinds[:4] == ["run_created", "run_debounced", "run_debounced", "debounce_fired"]
    assert not Debounce.objects.exists()


def test_debounce__a_start_after_the_window_makes_a_new_run(engine_db):
    first = flows.counter.start({"value": 1}, debounce=("k", 60))
    due_now(first)
    drain(timeout=20)
    later = flows.counter.start({"value": 5}, debounce=("k", 60))

    assert later.pk != first.pk and later.status == "pending"
    assert Run.objects.get(pk=first.pk).output == {"value": 3}
    due_now(later)
    drain(timeout=20)
    assert Run.objects.get(pk=later.pk).output == {"value": 7}


def test_debounce__the_window_slides_but_never_past_max_wait(engine_db):
    run = flows.counter.start({"value": 1}, debounce=("k", 30, 45))
    row = Debounce.objects.get(run=run)
    assert row.deadline - row.due_at == timedelta(seconds=15)
    Debounce.objects.filter(pk=row.pk).update(deadline=timezone.now() + timedelta(seconds=10))
    flows.counter.start({"value": 2}, debounce=("k", 30, 45))
    row.refresh_from_db()
    assert row.due_at == row.deadline and row.starts == 2  # capped by the max wait
    default = flows.counter.start({"value": 1}, debounce=("other", 2))
    other = Debounce.objects.get(run=default)
    assert other.deadline - other.due_at == timedelta(seconds=18)  # 10 windows from the first start


def test_debounce__keys_are_per_workflow_and_per_user(engine_db, django_user_model):
    alice = django_user_model.objects.create_user("alice", password="pw-alice-123")
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    runs = {
        flows.counter.start({"value": 1}, debounce=("k", 60), user=alice).pk,
        flows.counter.start({"value": 1}, debounce=("k", 60), user=bob).pk,
        flows.counter.start({"value": 1}, debounce=("k", 60)).pk,
        flows.fan.start({"value": 1}, debounce=("k", 60)).pk,
    }
    assert len(runs) == 4
    assert flows.counter.start({"value": 2}, debounce=("k", 60), user=alice).pk in runs


def test_debounce__a_canceled_waiting_run_never_starts_and_frees_its_key(engine_db):
    run = flows.counter.start({"value": 1}, debounce=("k", 60))
    run.cancel()
    due_now(run)
    assert engine.fire_debounced() == 0
    assert Run.objects.get(pk=run.pk).status == "canceled" and not run.steps.exists()
    again = flows.counter.start({"value": 2}, debounce=("k", 60))
    assert again.pk != run.pk and again.status == "pending"


@pytest.mark.parametrize(
    "debounce",
    [("k",), "k", ("", 5), ("k", 0), ("k", -1), ("k", float("nan")), ("k", True), ("k", 5, 1), ("k" * 256, 5),
     ("k", 10**9)],
)  # fmt: skip
def test_debounce__bad_options_are_invalid_input_and_create_nothing(engine_db, debounce):
    with pytest.raises(InvalidInput):
        flows.counter.start({"value": 1}, debounce=debounce)
    with pytest.raises(InvalidInput):
        flows.counter.start({"value": 1}, debounce=("k", 5), idempotency_key="x")
    assert not Run.objects.exists() and not Debounce.objects.exists()


def test_debounce__concurrent_starts_in_threads_are_one_run_with_the_last_input(engine_db):
    n = 8
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def start(i: int) -> None:
        try:
            barrier.wait(10)
            results[i] = flows.counter.start({"value": i}, debounce=("burst", 60)).pk
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            sender.reset()  # this thread's channel-layer loop, closed here rather than by the garbage collector
            connection.close()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == [] and len(set(results)) == 1
    [run] = runs_of(flows.counter)
    assert Debounce.objects.get(run=run).starts == n
    inputs = [e.data["input"] for e in RunEvent.objects.filter(run=run, kind__in=("run_created", "run_debounced"))]
    assert len(inputs) == n and sorted(i["value"] for i in inputs) == list(range(n))
    assert run.input == inputs[-1]  # the start that committed last
    due_now(run)
    drain(timeout=20)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.output == {"value": inputs[-1]["value"] + 2}


def test_debounce__through_the_api_keys_are_the_users_own_and_bad_options_are_400(engine_db, client, user):
    import json

    from django.contrib.auth import get_user_model

    def post(body):
        return client.post("/api/workflows/counter/runs/", json.dumps(body), content_type="application/json")

    client.force_login(user)
    first = post({"input": {"value": 1}, "debounce": {"key": "k", "seconds": 60}})
    second = post({"input": {"value": 2}, "debounce": {"key": "k", "seconds": 60, "max_wait": 120}})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"] and first.json()["status"] == "pending"
    assert Run.objects.get(pk=first.json()["id"]).input == {"value": 2}

    for bad in ({"key": "k"}, ["k", 60], {"key": "k", "seconds": 0}, {"key": "k", "seconds": 5, "extra": 1}):
        answer = post({"input": {"value": 3}, "debounce": bad})
        assert answer.status_code == 400 and "debounce" in answer.json()["error"]

    client.force_login(get_user_model().objects.create_user("bob", password="pw-bob-12345"))
    theirs = post({"input": {"value": 9}, "debounce": {"key": "k", "seconds": 60}})
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    assert Run.objects.count() == 2


def test_debounce__the_run_page_says_when_a_waiting_run_starts(engine_db, admin_client):
    from django.urls import reverse

    run = flows.counter.start({"value": 1}, debounce=("nightly-sync", 60))
    flows.counter.start({"value": 2}, debounce=("nightly-sync", 60))
    page = admin_client.get(reverse("workflows:run", args=[run.pk])).content.decode()
    assert "Debounced" in page and "nightly-sync" in page and "2 starts so far" in page
    due_now(run)
    drain(timeout=20)
    assert "Debounced" not in admin_client.get(reverse("workflows:run", args=[run.pk])).content.decode()
