"""After-commit work that a database outage may interrupt, logged as an outage rather than as a crash.

Pool admission and a parent's mirror of its child run happen after the transition's commit. When the database
restarts in between, they fail, and nothing is lost: the recovery loop admits due steps at every tick and syncs
children whose parent missed their end. So such a failure is one warning line per outage (no traceback), and a
note when the same work succeeds again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import DatabaseError, transaction

log = logging.getLogger("workflows.engine")
_failing_since: dict[str, float] = {}  # what -> when it started failing, in this process


def on_commit(fn: Callable[[], object], what: str) -> None:
    """Run ``fn`` after the current transaction commits; a database error there is an outage, not a crash."""
    transaction.on_commit(lambda: guarded(fn, what), robust=True)


def guarded(fn: Callable[[], object], what: str) -> None:
    try:
        fn()
    except DatabaseError as exc:
        if what not in _failing_since:
            _failing_since[what] = time.monotonic()
            log.warning("%s failed (%s: %s); the recovery loop will do it", what, type(exc).__name__, exc)
        return
    since = _failing_since.pop(what, None)
    if since is not None:
        log.warning("%s works again after %.1fs", what, time.monotonic() - since)
