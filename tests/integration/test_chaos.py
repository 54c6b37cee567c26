"""The small chaos test (``python -m tests.chaos --runs 30 --kills 3``) in CI: fails the build on any loss.

It brings its own PostgreSQL (it crashes it on purpose) and Redis, so it runs once, in the PostgreSQL leg of
``make test``; ``make chaos`` runs the big one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection

from .conftest import BASE_DIR

pytestmark = pytest.mark.integration


def test_chaos__30_runs_under_kills_and_restarts_lose_nothing():
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL leg of the suite (it starts a PostgreSQL of its own)")
    from tests import pgcluster

    try:
        pgcluster.bindir()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "WORKFLOWS_CRASH_AT")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.chaos", "--runs", "30", "--kills", "3", "--seed", "42"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(done.stdout[-5000:], done.stderr[-5000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "chaos: PASSED" in done.stdout
