"""Retry delays: exponential with jitter, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based) is ``initial * factor**(n-1)``, at most ``max`` seconds.

    With ``jitter`` the delay is drawn uniformly from [delay/2, delay] so that retries of many steps that
    failed together do not hit the same dependency at the same instant.
    """

    initial: float = 1.0
    factor: float = 2.0
    max: float = 60.0
    jitter: bool = True

    def delay(self, retry: int) -> float:
        base = min(self.max, self.initial * self.factor ** max(0, retry - 1))
        return random.uniform(base / 2, base) if self.jitter else base

    def to_json(self) -> dict:
        return {"initial": self.initial, "factor": self.factor, "max": self.max, "jitter": self.jitter}

    @classmethod
    def coerce(cls, value: Backoff | float | int | None) -> Backoff | None:
        if value is None or isinstance(value, Backoff):
            return value
        return cls(initial=float(value))
