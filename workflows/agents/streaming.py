"""Live tokens of an agent step's model requests (not yet: the run page shows each message once it is stored)."""

from __future__ import annotations

from typing import Any

from ..definition.context import StepContext


class Streamer:
    @classmethod
    def for_run(cls, ctx: StepContext) -> Any:
        return None
