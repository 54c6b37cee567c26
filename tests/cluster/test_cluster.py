"""The small multi-host test (``python -m tests.cluster --runs 4``) in CI: the four scenarios, fewer runs.

It brings its own PostgreSQL pair, Redis and hosts (network namespaces), so it runs once, in the PostgreSQL leg
of ``make test``; ``make cluster-test`` runs the big one. Namespaces need root: outside CI a non-root run skips,
under ``CI=true`` a machine where namespaces cannot be made fails the build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = pytest.mark.integration
BASE_DIR = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    if CI:
        pytest.fail(f"the multi-host test must run in CI: {reason}")
    pytest.skip(reason)


def test_cluster__three_hosts_lose_nothing_through_a_cut_a_redis_restart_and_a_failover():
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL leg of the suite (it starts a PostgreSQL pair of its own)")
    from tests import pgcluster

    if os.geteuid() != 0:
        unavailable("network namespaces need root")
    try:
        pgcluster.bindir()
    except RuntimeError as exc:
        unavailable(str(exc))
    cmd = [sys.executable, "-m", "tests.cluster", "--runs", "4", "--timeout", "180"]
    proc = subprocess.Popen(cmd, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: it deletes its namespaces (and kills what runs there) before exiting
        stdout, stderr = proc.communicate(timeout=60)
    print(stdout[-8000:], stderr[-5000:])
    if proc.returncode == 2:
        unavailable(stderr.strip()[-1000:])
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "cluster: PASSED" in stdout
