"""Riding out database outages: retry a whole transaction after a connection-level error.

A transition is one transaction, so after ``OperationalError``/``InterfaceError`` (the server restarted, the
connection dropped, SQLite stayed locked) it was either rolled back whole or, if the error hit the COMMIT
itself, committed whole. Calling it again is therefore safe: the engine's compare-and-set finds a transition
that did commit already applied and does nothing. A worker uses this to report a step's outcome after a
PostgreSQL restart instead of losing the finished work (its lease would expire and the step run again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connections

from .. import conf

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT = (OperationalError, InterfaceError)


def retrying(fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)``, called again after transient database errors for up to RECONNECT_SECONDS.

    ``fn`` must be one whole transaction (an engine transition); inside an open transaction this only calls it.
    """
    if any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        return fn(*args, **kwargs)
    deadline = time.monotonic() + float(conf.get("RECONNECT_SECONDS"))
    delay = 0.05
    while True:
        try:
            return fn(*args, **kwargs)
        except TRANSIENT as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s failed (%s); retrying in %.2fs", getattr(fn, "__name__", fn), exc, delay)
            for conn in connections.all(initialized_only=True):
                conn.close()  # a broken socket is not reused; the next query reconnects
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
