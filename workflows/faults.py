"""Crash points for tests: ``point(name)`` kills the process right there when ``WORKFLOWS_CRASH_AT`` names it.

``os._exit(137)`` skips every ``finally``, ``atexit`` hook and pending commit, as a SIGKILL would: the tests
use it to prove that a process dying at that exact line loses nothing. The variable is read once per process
(a forked work horse inherits its worker's reading). With ``WORKFLOWS_CRASH_ONCE`` set to a file path, only
the first process to create that file crashes, so a forking worker survives its horse's crash and carries on.
Without the variable, ``point`` costs one comparison.
"""

from __future__ import annotations

import os

EXIT_CODE = 137  # what a shell reports for a SIGKILLed process
_target: str | None = None
_read = False


def target() -> str:
    """The crash point this process dies at ('' for none)."""
    global _target, _read
    if not _read:
        _target, _read = os.environ.get("WORKFLOWS_CRASH_AT", ""), True
    return _target or ""


def point(name: str) -> None:
    """Die here, at once and without cleaning up, if this is the configured crash point."""
    if (_target if _read else target()) != name:
        return
    once = os.environ.get("WORKFLOWS_CRASH_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another process already crashed here
    os._exit(EXIT_CODE)
