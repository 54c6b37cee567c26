"""Testing workflows in a project's own test suite.

``drain(timeout=30)`` runs in-process RQ workers and fires due timers until nothing is runnable. With
pytest-django, add ``pytest_plugins = ["workflows.testing"]`` to a ``conftest.py`` and take the ``workflows``
fixture: a transactional database (runs commit, so their jobs run) and empty queues, giving ``drain``::

    def test_order_ships(workflows):
        run = order_flow.start({"id": 42})
        workflows.drain()
        run.refresh_from_db()
        assert run.status == "succeeded"
"""

from __future__ import annotations

from types import SimpleNamespace

from .runtime.dispatch import empty_queues
from .runtime.drain import drain

__all__ = ["drain", "empty_queues"]

try:
    import pytest
except ImportError:  # pragma: no cover - the fixture needs pytest; drain() does not
    pytest = None

if pytest is not None:

    @pytest.fixture
    def workflows(transactional_db):
        """A database whose commits are real (``transaction=True``) and empty RQ queues; ``.drain()`` runs."""
        empty_queues()
        yield SimpleNamespace(drain=drain)
        empty_queues()
