"""Test settings: the project's, plus a test app, fast timings, and an embedded Redis when REDIS_URL is unset.

Worker processes started by the tests inherit REDIS_URL and DATABASE_URL from the environment.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

if not os.environ.get("REDIS_URL"):
    from workflows.devserver import redis_server

    _redis_dir = Path(tempfile.mkdtemp(prefix="workflows-test-redis-"))
    _redis_proc, os.environ["REDIS_URL"] = redis_server.start(_redis_dir, appendonly=False)
    atexit.register(shutil.rmtree, _redis_dir, ignore_errors=True)
    atexit.register(redis_server.stop, _redis_proc)  # atexit runs last-registered first: stop, then remove

# Metrics on, in one multiprocess directory for the test process and the workers it starts (they inherit it)
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir = tempfile.mkdtemp(prefix="workflows-test-metrics-")
    atexit.register(shutil.rmtree, _metrics_dir, ignore_errors=True)

from project.settings import *  # noqa: E402,F403
from project.settings import DATABASES, INSTALLED_APPS, STATIC_ROOT, VAR_DIR  # noqa: E402

Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise warns at every request without it (a fresh clone)

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "workflows.sqlite":
    # a file, not :memory:, so that worker processes share the test database
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

WORKFLOWS = {
    "POOLS": {
        "default": {"queue": "default", "max_parallel": 10},
        "narrow": {"queue": "default", "max_parallel": 3},
        # flow control (tests/testapp/flow_control_flows.py)
        "single": {"queue": "default", "max_parallel": 1},
        "tenants": {"queue": "default", "max_parallel": 4},
        "rated": {"queue": "default", "max_parallel": 10, "rate": "2/3s"},
        "slow_rate": {"queue": "default", "max_parallel": 10, "rate": "1/10s"},
        "budget": {"queue": "default", "max_parallel": 5, "tokens": "1/h"},
        "key_rated": {"queue": "default", "max_parallel": 10, "key_rate": "2/h"},
        "pooled_keys": {
            "queue": "default",
            "max_parallel": 4,
            "key_limit": 1,
            "concurrency_key": "tests.testapp.flow_control_flows.tenant_of",
        },
    },
    "WORKER_CLASS": os.environ.get("WORKFLOWS_WORKER_CLASS", "rq.worker.SimpleWorker"),
    "HEARTBEAT_SECONDS": 0.2,
    "LEASE_SECONDS": float(os.environ.get("WORKFLOWS_LEASE_SECONDS", "30")),
    "EAGER_SECONDS": float(os.environ.get("WORKFLOWS_EAGER_SECONDS", "1")),
    "REQUEUE_AFTER_SECONDS": float(os.environ.get("WORKFLOWS_REQUEUE_AFTER_SECONDS", "30")),
    "SHUTDOWN_GRACE_SECONDS": float(os.environ.get("WORKFLOWS_SHUTDOWN_GRACE_SECONDS", "30")),
    "WORKER_LOST_RETRIES": int(os.environ.get("WORKFLOWS_WORKER_LOST_RETRIES", "3")),
    "TICK_SECONDS": 0.1,
    "PROCESS_HEARTBEAT_SECONDS": float(os.environ.get("WORKFLOWS_PROCESS_HEARTBEAT_SECONDS", "5")),
    "DEFAULT_BACKOFF": 0.01,
    # the suite starts many runs as one user; tests/unit/test_rate_limits.py sets low limits of its own
    "RATE_LIMITS": {"start": "100000/minute", "event": "100000/minute", "resume": "100000/minute"},
    "METRICS": True,
    "METRICS_TOKEN": "test-metrics-token",
}
