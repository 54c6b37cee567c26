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
    "channels.generic", "channels.layers", "channels_redis",    # consumers; publishing imports the layer lazily
    "workflows.live.consumer", "workflows.web", "workflows.admin", "workflows.urls",
    "ninja",                                                    # the JSON API
]  # fmt: skip


@pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])
def test_worker_modules__a_step_runs_in_a_process_without_web_modules(start_workers, worker_class):
    start_workers(1, worker_class)

    run = finished(eager_flows.worker_modules.start(FORBIDDEN))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == []
