"""Settings of every benchmark process (scenario runners, workers, daphne): the project's, plus the bench app.

DATABASE_URL and REDIS_URL come from the environment, set by ``bench.run``. Timings are the project's defaults
(heartbeat, lease, tick): a benchmark measures what a deployment gets.
"""

import os
import sys

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS, WORKFLOWS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
if sys.argv[1:2] == ["rqworker"]:  # bench.worker_memory's django-rq anchor (--skip-checks): the apps ours have
    INSTALLED_APPS = [a for a in INSTALLED_APPS if a not in ("django.contrib.admin.apps.SimpleAdminConfig", "axes")]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # logging in is not what the pages measure
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]  # testserver: django.test.Client

WORKFLOWS = {
    **WORKFLOWS,
    "POOLS": {
        "default": {"queue": "default", "max_parallel": 10},
        "bench_plain": {"queue": "default", "max_parallel": 10},  # bench.admission
        # bench.compare: one pool per mode, each served by its own workers (BENCH_EAGER_SECONDS tells them apart)
        "bench_step": {"queue": "bench-step", "max_parallel": 10},
        "bench_eager": {"queue": "bench-eager", "max_parallel": 10},
        "bench_keyed": {
            "queue": "default",
            "max_parallel": 10,
            "concurrency_key": "bench.flows.key_of",
            "key_limit": 1,
        },
    },
    "WORKER_CLASS": os.environ.get("WORKFLOWS_WORKER_CLASS", "rq.worker.SimpleWorker"),
}
if os.environ.get("BENCH_EAGER_SECONDS"):  # bench.compare's one-job-per-step workers: 0
    WORKFLOWS["EAGER_SECONDS"] = float(os.environ["BENCH_EAGER_SECONDS"])
