"""The demo site's production switches: one HTTPS flag makes ``check --deploy`` clean; the generated secret key is
readable by its owner only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "HTTPS", "DJANGO_SETTINGS_MODULE")}
    clean.update(WORKFLOWS_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="project.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_production__the_https_flag_makes_check_deploy_clean(tmp_path):
    plain = run_manage(tmp_path, "check", "--deploy")
    assert "security.W008" in plain.stderr + plain.stdout  # without the flag: SSL redirect, cookies, HSTS
    secure = run_manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", HTTPS="1")
    assert secure.returncode == 0, secure.stderr
    assert "no issues" in secure.stdout


def test_production__the_generated_secret_key_is_readable_by_its_owner_only(tmp_path):
    run_manage(tmp_path / "var", "check")
    assert stat.S_IMODE((tmp_path / "var" / "secret_key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700  # the database and the Redis socket live there


@pytest.mark.django_db
def test_production__pages_carry_a_content_security_policy(client, user, settings):
    client.force_login(user)
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "unsafe-eval" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
    settings.CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in client.get("/")
