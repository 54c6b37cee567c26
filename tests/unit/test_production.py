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


@pytest.mark.django_db
def test_production__static_files_are_not_shared_with_every_origin(client):
    response = client.get("/static/workflows/live.js")
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.django_db
def test_production__password_reset_is_off_without_mail(client, settings, mailoutbox):
    assert not settings.PASSWORD_RESET  # the tests configure no mail: no SMTP to localhost:25
    assert client.get("/accounts/password_reset/").status_code == 404
    assert client.post("/accounts/password_reset/", {"email": "a@example.com"}).status_code == 404
    assert client.get("/accounts/login/").status_code == 200  # the rest of the accounts pages stay


def test_production__password_reset_is_on_with_a_mail_backend(tmp_path):
    code = "from django.urls import reverse; print(reverse('password_reset'))"
    off = run_manage(tmp_path, "shell", "-c", code)
    assert off.returncode != 0 and "NoReverseMatch" in off.stderr
    on = run_manage(tmp_path, "shell", "-c", code, EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend")
    assert on.returncode == 0 and on.stdout.strip().endswith("\n/accounts/password_reset/"), on.stderr


@pytest.mark.parametrize(
    ("debug", "hosts", "refused"),
    [
        (False, ["127.0.0.1", "localhost"], "needs DEBUG on"),
        (True, ["127.0.0.1", "example.com"], "ALLOWED_HOSTS allows ['example.com']"),
        (True, ["*"], "ALLOWED_HOSTS allows ['*']"),
        (True, ["localhost", "127.0.0.1", "::1", "[::1]"], None),
        (True, [], None),
    ],
)
def test_production__the_demo_admin_is_created_only_on_a_local_debug_site(settings, debug, hosts, refused):
    from django.core.management import CommandError, call_command

    from workflows.management.commands.up import demo_user_refusal

    settings.DEBUG, settings.ALLOWED_HOSTS = debug, hosts
    assert (refused in demo_user_refusal()) if refused else demo_user_refusal() is None
    if refused:  # up stops before it starts anything (no Redis, no migration, no account)
        with pytest.raises(CommandError, match="for local use only"):
            call_command("up", "--demo-user", "--port", "1")
