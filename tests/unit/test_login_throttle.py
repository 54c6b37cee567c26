"""Login throttling (django-axes in the demo site): failures pause logging in for that username, and separately
from that address, with a clear 429 page; a success resets the count."""

from __future__ import annotations

import pytest
from django.test import Client

LOGIN = "/accounts/login/"


@pytest.fixture
def accounts(django_user_model):
    for name in ("alice", "bob", "carol"):
        django_user_model.objects.create_user(name, password=f"pw-{name}-12345")


def attempt(username: str, password: str, address: str):
    return Client(REMOTE_ADDR=address).post(LOGIN, {"username": username, "password": password})


def logs_in(username: str, address: str) -> bool:
    response = attempt(username, f"pw-{username}-12345", address)
    return response.status_code == 302 and "_auth_user_id" in response.client.session


@pytest.mark.django_db
def test_login__failures_for_one_username_pause_it_from_every_address(accounts, settings):
    statuses = [attempt("alice", "wrong", f"10.0.0.{i + 1}").status_code for i in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form with its error, then paused
    refused = attempt("alice", "pw-alice-12345", "10.0.1.1")  # the right password, from elsewhere: paused too
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 15 * 60
    assert b"Too many login attempts" in refused.content and b"Try again in 15 minutes" in refused.content
    assert "_auth_user_id" not in refused.client.session
    assert logs_in("bob", "10.0.1.1")  # other users are not affected


@pytest.mark.django_db
def test_login__failures_from_one_address_pause_it_for_every_username(accounts, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        attempt(f"nobody-{i}", "guess", "10.0.0.9")  # a different username each time
    assert attempt("carol", "pw-carol-12345", "10.0.0.9").status_code == 429
    assert logs_in("carol", "10.0.0.10")


@pytest.mark.django_db
def test_login__a_success_resets_the_count(accounts, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt("alice", "wrong", "10.0.0.1")
    assert logs_in("alice", "10.0.0.1")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt("alice", "wrong", "10.0.0.1")
    assert logs_in("alice", "10.0.0.1")
