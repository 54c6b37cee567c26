"""Rates such as ``"60/m"`` (60 per minute) or ``"100000/h"``: a count per period, for pools' rate limits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..exceptions import WorkflowDefinitionError

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    """At most ``count`` in any window of ``seconds`` (a sliding window)."""

    count: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}s"


def parse_rate(text: str) -> Rate:
    """``"60/m"``, ``"10/s"``, ``"1000/h"``, ``"5/30s"``, ``"100000/d"``; WorkflowDefinitionError otherwise."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if not match or int(match[1]) < 1 or (match[2] and float(match[2]) <= 0):
        raise WorkflowDefinitionError(f"Invalid rate {text!r}: use count/period, e.g. '60/m', '10/s', '5/30s'")
    return Rate(int(match[1]), float(match[2] or 1) * _UNIT[match[3]])
