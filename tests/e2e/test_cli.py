"""The ``workflows`` CLI end to end: the installed command, against a real daphne, real RQ workers and Redis, with
an API token from the environment. ``--follow`` streams runs over the websocket and exits with their status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.models import Run, RunStatus
from workflows.store import tokens

from .conftest import BASE_DIR, SIMPLE

pytestmark = pytest.mark.e2e
TIMEOUT = 120  # s: a command, following a run through workers and the websocket on a loaded box
SCRIPT = Path(sys.executable).parent / "workflows"  # the console script pyproject installs


@pytest.fixture
def cli(server, e2e_user, start_workers, recovery_loop, tmp_path):
    start_workers(2, worker_class=SIMPLE)
    _, secret = tokens.create(e2e_user, "cli e2e")
    env = {
        **os.environ,
        "WORKFLOWS_URL": f"{server}/",
        "WORKFLOWS_TOKEN": secret,
        "WORKFLOWS_CONFIG": str(tmp_path / "absent.toml"),
        "COLUMNS": "120",
    }

    def run(*args: str, command: list[str] | None = None, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*(command or [str(SCRIPT)]), *args],
            env={**env, **extra},
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )

    return run


def test_cli__start_follow_resume_cancel_and_exit_codes(cli, e2e_user, tmp_path):
    done = cli("start", "squares", "--input", "[1, 2, 3]", "--follow", "--timeout", "90")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "succeeded" in done.stdout and "3/3 items" in done.stdout  # the foreach's progress
    squares = Run.objects.get(workflow__name="squares")
    assert squares.status == RunStatus.SUCCEEDED and squares.created_by == e2e_user

    chatty = cli("start", "chatty", "--input", '{"value": 1}', "--key", "k-1", "--follow", "--json")
    assert chatty.returncode == 0, chatty.stderr
    lines = [json.loads(line) for line in chatty.stdout.splitlines()]
    assert {"step_log", "step_progress", "run_succeeded"} <= {e.get("kind") for e in lines[:-1]}
    assert lines[-1]["status"] == "succeeded" and lines[-1]["output"] == {"value": 20}
    again = cli("start", "chatty", "--input", '{"value": 1}', "--key", "k-1", "--json")
    assert json.loads(again.stdout)["id"] == lines[-1]["id"]  # the idempotency key: the same run

    (tmp_path / "input.json").write_text('{"value": 2}')
    asking = cli("start", "reviewed", "--input", f"@{tmp_path / 'input.json'}", "--follow", "--timeout", "90")
    assert asking.returncode == 3, asking.stderr + asking.stdout  # suspended: waits for a person
    reviewed = Run.objects.get(workflow__name="reviewed")
    refused = cli("resume", str(reviewed.pk), "--data", '{"ok": "maybe"}')
    assert refused.returncode == 4 and "ok" in refused.stderr  # the API's 400, with the field's error
    resumed = cli("resume", str(reviewed.pk), "--data", '{"ok": true}', "--follow", "--timeout", "90")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout

    failed = cli("start", "failing", "--input", '{"value": 1}', "--follow", "--timeout", "90")
    assert failed.returncode == 1 and "boom 1" in failed.stderr + failed.stdout

    napping = json.loads(cli("start", "long-nap", "--input", '{"value": 1}', "--json").stdout)
    canceled = cli("cancel", str(napping["id"]), "--json")
    assert canceled.returncode == 0 and json.loads(canceled.stdout)["status"] == "canceled"
    assert cli("follow", str(napping["id"])).returncode == 2

    listed = json.loads(cli("list", "--json", "--limit", "50").stdout)
    assert listed["count"] == Run.objects.count() == 5
    shown = cli("show", str(squares.pk))
    assert shown.returncode == 0 and "square_item[2]" in shown.stdout
    manage = cli("list", "--workflows", command=[sys.executable, "manage.py", "workflows"])
    assert manage.returncode == 0 and "trip-planner" in manage.stdout

    assert cli("show", "999999").returncode == 4
    assert cli("list", WORKFLOWS_TOKEN="wft_wrong").returncode == 4
    assert cli("start", "squares", "--input", "{not json").returncode == 64


def test_cli__schedules_list_pause_and_resume_need_the_right_to_change_them(cli, e2e_admin):
    from workflows.engine import schedule_admin

    s = schedule_admin.create("chatty", {"cron": "0 3 * * *", "input": {"value": 1}, "name": "nightly"})
    listed = cli("schedules", "list", "chatty")
    assert listed.returncode == 0, listed.stderr
    assert "nightly" in listed.stdout and "0 3 * * *" in listed.stdout and "active" in listed.stdout
    assert json.loads(cli("schedules", "list", "chatty", "--json").stdout)["schedules"][0]["id"] == s.pk
    assert cli("schedules", "list", "nope").returncode == 4  # no such workflow: the API's 404

    refused = cli("schedules", "pause", str(s.pk))  # erin is not staff
    assert refused.returncode == 4 and "403" in refused.stderr
    s.refresh_from_db()
    assert not s.paused

    admin = {"WORKFLOWS_TOKEN": tokens.create(e2e_admin, "cli e2e admin")[1]}
    paused = cli("schedules", "pause", str(s.pk), "--json", **admin)
    assert paused.returncode == 0, paused.stderr
    assert json.loads(paused.stdout)["paused"] is True and json.loads(paused.stdout)["next_times"] == []
    s.refresh_from_db()
    assert s.paused
    resumed = cli("schedules", "resume", str(s.pk), **admin)
    assert resumed.returncode == 0 and "active" in resumed.stdout, resumed.stderr
    s.refresh_from_db()
    assert not s.paused
