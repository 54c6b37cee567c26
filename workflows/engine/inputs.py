"""The engine's boundary checks on user data (start, resume, send_event, restart): ``definition.limits`` with the
``WORKFLOWS`` limits. Raw data is checked before validation (so that nothing deep reaches pydantic and no ``NaN``
is silently turned into ``null``), and the JSON to be stored after it (a ``"NaN"`` parsed into a float field, the
size). Either raises ``InvalidInput`` before anything is written."""

from __future__ import annotations

from typing import Any

from .. import conf
from ..definition import limits


def accept(data: Any, what: str) -> None:
    """Check data as received: depth, non-finite numbers, NUL characters."""
    limits.check(data, what, max_depth=conf.get("MAX_JSON_DEPTH"))


def storable(value: Any, what: str) -> Any:
    """Check JSON about to be stored (after validation): as ``accept``, and its size. Returns it."""
    limits.check(value, what, **conf.json_limits())
    return value
