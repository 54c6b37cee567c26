"""The deployment kit (deploy/) checked with what a machine without a Docker engine allows: the Compose file against
the Compose specification's JSON schema, the Dockerfile with hadolint, the systemd units with ``systemd-analyze
verify``; and every process they start is one the app has, with a stop timeout longer than the shutdown grace."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from tests.conftest import skip_or_fail
from workflows import conf

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
APP_SERVICES = ("migrate", "web", "worker", "recover")


def tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}:/usr/bin:/bin:/usr/local/bin")
    if path is None:
        skip_or_fail(f"{name} is not installed")
    return path


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def validate_compose(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", str(duration))
    assert match, f"write durations in seconds: {duration!r}"
    return float(match[1])


def test_compose_file__follows_the_compose_specification(tmp_path):
    checked = validate_compose(DEPLOY / "compose.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    broken = compose()
    broken["services"]["worker"]["stop_grace_periodd"] = "45s"  # the validator does reject a misspelt key
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    assert validate_compose(tmp_path / "compose.yaml").returncode != 0


def test_compose_file__starts_the_apps_own_commands_after_the_migration():
    services = compose()["services"]
    commands = get_commands()
    for name in APP_SERVICES:
        command = services[name]["command"]
        if command[:2] == ["python", "manage.py"]:
            assert command[2] in commands, f"{name}: no management command {command[2]!r}"
        else:
            assert command[0] == "daphne" and command[-1] == "project.asgi:application"
    for name in ("worker", "recover"):  # their liveness: a recent heartbeat of the container's process
        assert services[name]["healthcheck"]["test"][1:4] == ["python", "manage.py", "workflows_alive"]
        assert "workflows_alive" in commands
    for name in ("web", "worker", "recover"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"
    # a worker's SIGKILL comes after its running step had the whole grace (README: "Deploys and restarts")
    grace = conf.get("SHUTDOWN_GRACE_SECONDS")
    assert seconds(services["worker"]["stop_grace_period"]) > grace
    assert "--appendonly" in services["redis"]["command"]
    assert services["postgres"]["command"].count("synchronous_commit=on") == 1


def test_dockerfile__passes_hadolint_and_runs_as_a_non_root_user_from_the_wheel():
    dockerfile = DEPLOY / "Dockerfile"
    linted = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True, timeout=120)
    assert linted.returncode == 0, linted.stdout + linted.stderr

    text = dockerfile.read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    user = re.findall(r"^USER (\S+)", final_stage, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert "bdist_wheel" in text or "build --wheel" in text
    assert "HEALTHCHECK" in final_stage and "/health/ready" in final_stage
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):  # everything it copies is in the repository
        assert (ROOT / source).exists(), source
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text()
    assert ignored.splitlines()[1] == "**"  # the build context is only what the image needs (no var/, no .venv)


def test_systemd_units__verify_and_give_workers_more_than_the_grace(tmp_path):
    analyze = tool("systemd-analyze")
    units = sorted((DEPLOY / "systemd").iterdir())
    for unit in units:  # their paths pointed at this checkout, so that verify finds the executables
        text = unit.read_text().replace("/srv/workflows/venv/bin/", f"{BIN}/").replace("/srv/workflows", str(ROOT))
        (tmp_path / unit.name).write_text(text)
        for command in re.findall(r"manage\.py (\w+)", text):
            assert command in get_commands(), f"{unit.name}: no management command {command!r}"
    instances = [
        str(tmp_path / u.name.replace("@.", "@1.")) if "@." in u.name else str(tmp_path / u.name) for u in units
    ]
    verified = subprocess.run([analyze, "verify", *instances], capture_output=True, text=True, timeout=120)
    problems = [line for line in verified.stderr.splitlines() if str(tmp_path) in line or "Command" in line]
    assert verified.returncode == 0 and not problems, verified.stderr

    worker = (DEPLOY / "systemd" / "workflows-worker@.service").read_text()
    timeout = int(re.search(r"^TimeoutStopSec=(\d+)$", worker, re.M)[1])
    assert timeout > conf.get("SHUTDOWN_GRACE_SECONDS")
    assert "KillMode=control-group" in worker  # the forking worker's horse gets the SIGTERM too


@pytest.mark.parametrize("name", ["env.example"])
def test_env_example__names_a_database_url_the_demo_settings_can_read(name):
    import dj_database_url

    line = next(x for x in (DEPLOY / name).read_text().splitlines() if x.startswith("DATABASE_URL="))
    parsed = dj_database_url.parse(line.split("=", 1)[1])
    assert parsed["OPTIONS"]["target_session_attrs"] == "read-write"
    assert "," in parsed["HOST"]  # libpq's host list: a failover needs no new configuration
