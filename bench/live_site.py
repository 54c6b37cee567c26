"""A throwaway demo site for the live-update benchmarks (``push_latency``, ``stalled_clients``): an embedded
Redis (unless REDIS_URL is set), a fresh SQLite database in a temporary directory, migrated, one user, and one
pending run of a one-step workflow for the websocket clients to subscribe to."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Site:
    work: Path  # the temporary directory: database, Redis, daphne's logs
    user: Any
    cookie: str  # the user's session cookie, for websocket handshakes
    run: Any  # a run that stays pending: nothing executes it


@contextlib.contextmanager
def live_site(name: str) -> Iterator[Site]:
    work = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    redis_proc = None
    if not os.environ.get("REDIS_URL"):
        from workflows.devserver import redis_server

        redis_proc, os.environ["REDIS_URL"] = redis_server.start(work / "redis", appendonly=False)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        WORKFLOWS_VAR_DIR=str(work),
        WORKFLOWS_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from pydantic import BaseModel

        from tests.integration.live_fixtures import session_cookie
        from workflows import StepContext, Workflow, step

        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_user("bench", password="bench-password-1")

        class Num(BaseModel):
            value: int

        @step
        def idle(ctx: StepContext, data: Num) -> Num:
            return data

        run = Workflow(name, input=Num).then(idle).commit().start({"value": 0}, user=user)
        yield Site(work, user, session_cookie(user), run)
    finally:
        if redis_proc is not None:
            from workflows.devserver import redis_server

            redis_server.stop(redis_proc)
