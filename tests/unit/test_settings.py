"""The typed WORKFLOWS setting, what the app derives from it, and the system checks that say what is wrong."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from workflows import checks, conf


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_conf__defaults_fill_every_key_not_given(settings):
    settings.WORKFLOWS = {"POOLS": {"default": {"max_parallel": 4}}}
    cfg = conf.settings()
    assert cfg.POOLS["default"].max_parallel == 4 and conf.queue_of("default") == "default"
    assert cfg.LEASE_SECONDS == 30.0 and cfg.LIVE.HOLD_SECONDS == 0.02 and conf.live("WINDOW_BYTES") == 1 << 20


def test_conf__an_invalid_value_is_improperly_configured_naming_the_key(settings):
    settings.WORKFLOWS = {"LEASE_SECONDS": -1, "LIVE": {"HOLD_SECONDS": "soon"}, "POOLS": {"a": {"max_parallel": 0}}}
    with pytest.raises(ImproperlyConfigured) as exc:
        conf.settings()
    message = str(exc.value)
    assert "WORKFLOWS['LEASE_SECONDS']" in message
    assert "WORKFLOWS['LIVE']['HOLD_SECONDS']" in message
    assert "WORKFLOWS['POOLS']['a']['max_parallel']" in message
    [error] = checks.check_settings(None)
    assert error.id == "workflows.E001" and "LEASE_SECONDS" in error.msg and error.hint


def test_conf__an_unknown_key_is_an_error_not_silently_ignored(settings):
    settings.WORKFLOWS = {"LEASE_SECOND": 10}
    assert ids(checks.check_settings(None)) == ["workflows.E001"]


def test_conf__rq_queues_and_channel_layer_derive_from_the_redis_url(settings, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings.WORKFLOWS = {"POOLS": {"default": {}, "llm": {"queue": "slow", "max_parallel": 2}}}
    assert conf.redis_url() == "redis://localhost:6379/0"
    monkeypatch.setenv("REDIS_URL", "redis://env-host:6379/1")
    assert conf.redis_url() == "redis://env-host:6379/1"
    settings.WORKFLOWS = {**settings.WORKFLOWS, "REDIS_URL": "redis://setting-host:6379/2"}
    assert conf.rq_queues() == {
        "default": {"URL": "redis://setting-host:6379/2"},
        "slow": {"URL": "redis://setting-host:6379/2"},
    }
    [host] = conf.channel_layers()["default"]["CONFIG"]["hosts"]
    assert host["address"] == "redis://setting-host:6379/2" and host["socket_timeout"] > 5


def test_checks__the_test_settings_pass():
    assert checks.check_settings(None) == []
    assert checks.check_installation(None) == []
    assert checks.check_channel_layer(None) == []


def test_checks__default_pool_missing_from_pools(settings):
    settings.WORKFLOWS = {"DEFAULT_POOL": "main", "POOLS": {"other": {}}}
    [error] = [m for m in checks.check_settings(None) if m.id == "workflows.E002"]
    assert "'main'" in error.msg and "other" in error.msg


def test_checks__a_pools_queue_missing_from_the_projects_own_rq_queues(settings):
    settings.WORKFLOWS = {"POOLS": {"default": {}, "llm": {"queue": "llm-queue"}}}
    settings.RQ_QUEUES = {"default": {"URL": "redis://localhost:6379/0"}}
    [error] = [m for m in checks.check_settings(None) if m.id == "workflows.E003"]
    assert "'llm-queue'" in error.msg and "RQ_QUEUES" in error.hint


def test_checks__an_unparsable_redis_url(settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "REDIS_URL": "localhost:6379"}
    [error] = [m for m in checks.check_settings(None) if m.id == "workflows.E004"]
    assert "localhost:6379" in error.msg and "redis://" in error.hint


def test_checks__a_worker_class_that_cannot_be_imported(settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "WORKER_CLASS": "rq.worker.NoSuchWorker"}
    [error] = [m for m in checks.check_settings(None) if m.id == "workflows.E005"]
    assert "NoSuchWorker" in error.msg


def test_checks__channel_layer_missing_or_in_memory(settings):
    settings.CHANNEL_LAYERS = {"other": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert ids(checks.check_channel_layer(None)) == ["workflows.E006"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert ids(checks.check_channel_layer(None)) == ["workflows.W002"]


def test_checks__a_required_app_missing_from_installed_apps(monkeypatch):
    from django.apps import apps

    installed = apps.is_installed
    monkeypatch.setattr(apps, "is_installed", lambda name: name != "django_rq" and installed(name))
    [error] = checks.check_installation(None)
    assert error.id == "workflows.E010" and "'django_rq'" in error.msg and "INSTALLED_APPS" in error.hint


def test_checks__plain_sqlite_warns_with_the_fix_and_the_apps_engine_does_not(settings):
    plain = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/db.sqlite3"}
    [warning] = checks.sqlite_warnings(plain)
    assert warning.id == "workflows.W001" and "workflows.sqlite" in warning.hint
    assert checks.sqlite_warnings({**plain, "ENGINE": "workflows.sqlite"}) == []
    assert checks.sqlite_warnings({**plain, "NAME": ":memory:"}) == []  # one process: nothing to contend with
    settings.WORKFLOWS = {**settings.WORKFLOWS, "SQLITE_CHECK": "off"}
    assert checks.sqlite_warnings(plain) == []


def test_checks__a_committed_workflow_whose_pool_is_no_longer_configured(settings):
    pools = {k: v for k, v in settings.WORKFLOWS["POOLS"].items() if k != "narrow"}
    settings.WORKFLOWS = {**settings.WORKFLOWS, "POOLS": pools}  # "narrow" is gone
    errors = [m for m in checks.check_settings(None) if m.id == "workflows.E007"]
    assert errors and all("'narrow'" in e.msg and "WORKFLOWS['POOLS']" in e.hint for e in errors)


def test_up__gives_workers_more_than_their_shutdown_grace_before_sigkill(settings):
    from workflows.management.commands.up import grace_seconds

    settings.WORKFLOWS = {"SHUTDOWN_GRACE_SECONDS": 45}
    assert grace_seconds() > 45
    settings.WORKFLOWS = {}
    assert conf.get("SHUTDOWN_GRACE_SECONDS") == 30 and grace_seconds() > 30


def test_conf__shutdown_and_lost_worker_budgets(settings):
    settings.WORKFLOWS = {}
    cfg = conf.settings()
    assert (cfg.SHUTDOWN_GRACE_SECONDS, cfg.WORKER_LOST_RETRIES, cfg.SHUTDOWN_RETRIES) == (30.0, 3, 10)
    settings.WORKFLOWS = {"WORKER_LOST_RETRIES": -1, "SHUTDOWN_GRACE_SECONDS": -5, "SHUTDOWN_RETRIES": 1.5}
    [error] = checks.check_settings(None)
    assert error.id == "workflows.E001"
    assert all(key in error.msg for key in ("WORKER_LOST_RETRIES", "SHUTDOWN_GRACE_SECONDS", "SHUTDOWN_RETRIES"))
