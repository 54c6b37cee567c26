"""Where an agent's streamed text goes: the token sinks the app connects at start-up (``live.tokens``).

Kept apart from the agent code so that connecting a sink imports no pydantic-ai: a process that never runs an
agent (a web server, a worker of other pools) does not pay for loading it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenBatch:
    """Text of one model request of a run, from ``offset`` on (``offset`` and ``length`` in UTF-16 code units,
    as JavaScript counts a string's length); ``so_far`` is the whole text streamed up to the end of this batch.
    ``done``: the request ended (completed or failed); ``text`` is empty then."""

    run_id: int
    path: str
    text: str
    offset: int
    so_far: str
    done: bool = False


Sink = Callable[[TokenBatch], None]
_sinks: list[Sink] = []


def add_sink(fn: Sink) -> None:
    """Register ``fn(batch)``, called with every batch of streamed text (once; a sink added twice is kept once)."""
    if fn not in _sinks:
        _sinks.append(fn)


def remove_sink(fn: Sink) -> None:
    if fn in _sinks:
        _sinks.remove(fn)


def listening() -> bool:
    return bool(_sinks)


def sinks() -> tuple[Sink, ...]:
    return tuple(_sinks)
