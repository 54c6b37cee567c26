"""A worker process loads what steps need, not the web server: no daphne, no twisted (issue 18, lighter workers).

Run in a fresh interpreter, as ``manage.py workflows_worker`` starts: the demo settings, ``django.setup()``, the
worker command and ``workflows.runtime.worker``. What the test process itself has imported does not count.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("daphne", "twisted", "autobahn", "channels.layers", "channels_redis")
# nor the API, the views, the websocket consumer, the admin modules' imports (metrics: off in the demo settings)
WEB = ("ninja", "workflows.web", "workflows.live.consumer", "channels.generic", "workflows.admin", "prometheus_client")

PROBE = """
import json, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]  # as `manage.py <command>` sees them
import django
django.setup()
from django.conf import settings
import workflows.management.commands.workflows_worker, workflows.runtime.worker
print(json.dumps({"modules": sorted(sys.modules), "apps": list(settings.INSTALLED_APPS)}))
"""


def _probe(tmp_path, *argv: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "WORKFLOWS_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "manage.py", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_a_worker_process_imports_no_web_server(tmp_path):
    found = _probe(tmp_path, "workflows_worker")
    assert "daphne" not in found["apps"]
    assert [name for name in HEAVY if _loaded(found["modules"], name)] == []
    assert [name for name in WEB if _loaded(found["modules"], name)] == []
    assert "ninja" not in found["apps"]


def test_runserver_still_gets_daphnes_asgi_runserver(tmp_path):
    found = _probe(tmp_path, "runserver")
    assert found["apps"][0] == "daphne"  # before staticfiles, so that its runserver wins
    assert "ninja" in found["apps"]  # the API docs page's Swagger UI
