"""A real worker process, started as deployments start it (``manage.py workflows_worker``), imports what steps
need and not the web server, the API, the views or the websocket consumer (issue 18, lighter workers)."""

from __future__ import annotations

import pytest

from tests.testapp import eager_flows
from workflows.models import RunStatus

from .conftest import FORKING, SIMPLE, finished

pytestmark = pytest.mark.integration
FORBIDDEN = [
    "daphne", "twisted", "autobahn",                            # the ASGI server
    "channels.generic", "channels.layers", "channels_redis.core",  # consumers; publishing imports the layer lazily
    "cryptography.fernet", "cryptography.hazmat",               # channels-redis's serializers, preloaded without
    "workflows.live.consumer", "workflows.web", "workflows.admin", "workflows.urls",
    "ninja",                                                    # the JSON API
    "django.contrib.admin", "axes",                             # the demo's settings leave them out of workers
]  # fmt: skip


@pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])
def test_worker_modules__a_step_runs_in_a_process_without_web_modules(start_workers, worker_class):
    start_workers(1, worker_class)

    run = finished(eager_flows.worker_modules.start(FORBIDDEN))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == []


@pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])
def test_worker_modules__a_demo_worker_that_ran_no_agent_step_has_not_imported_pydantic_ai(start_workers, worker_class):
    """The demo's settings register the support desk's agent workflow (agents named by path): its module is
    imported, the agents' module and pydantic-ai are not, after the worker ran the trip planner's steps; nor is
    cryptography, though their publications loaded the channel layer (``live.lean_layer``)."""
    from examples.flows import trip_planner

    start_workers(1, worker_class, env={"DJANGO_SETTINGS_MODULE": "tests.demo_worker_settings"})
    trip = finished(trip_planner.start({"city": "Lisbon"}))
    prefixes = ["pydantic_ai", "examples.support_desk", "examples.support_desk_agents", "workflows.agents.execute"]
    prefixes += ["cryptography.fernet", "cryptography.hazmat"]  # the channel layer the steps loaded comes without
    run = finished(eager_flows.worker_modules.start(prefixes))

    assert trip.status == RunStatus.SUCCEEDED, trip.error
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == ["examples.support_desk"]
