"""Settings of every benchmark process (scenario runners, workers, daphne): the project's, plus the bench app.

DATABASE_URL and REDIS_URL come from the environment, set by ``bench.run``. Timings are the project's defaults
(heartbeat, lease, tick): a benchmark measures what a deployment gets.
"""

import os

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS, WORKFLOWS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # logging in is not what the pages measure
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]  # testserver: django.test.Client

WORKFLOWS = {
    **WORKFLOWS,
    "POOLS": {
        "default": {"queue": "default", "max_parallel": 10},
        "bench_plain": {"queue": "default", "max_parallel": 10},  # bench.admission
        "bench_keyed": {
            "queue": "default",
            "max_parallel": 10,
            "concurrency_key": "bench.flows.key_of",
            "key_limit": 1,
        },
    },
    "WORKER_CLASS": os.environ.get("WORKFLOWS_WORKER_CLASS", "rq.worker.SimpleWorker"),
}
