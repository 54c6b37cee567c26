"""Live tokens: the text of an agent step's model response, published as it streams in, batched, never stored.

A model request of an agent step (``answer/model#2``) is made as a streamed request when the model can stream
(any pydantic-ai model; a ``FunctionModel`` only with a ``stream_function``) and something listens. The text the
model streams is gathered into batches (every ``INTERVAL`` seconds or ``MAX_CHARS`` characters) and handed to the
token sinks: the live layer's (``live.tokens``, connected by ``apps.py``: this layer does not import it) sends
each batch to the run's channel-layer group and keeps the text so far in Redis for a page opened mid-stream. No
database row is written per batch: the response is recorded whole when it completes, as before, and its journal
event carries the final message, which replaces the streamed text on the page.

A sink is called on the agent's event loop and must not block it (the live layer's hands the work to a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic_ai import ModelResponse, PartDeltaEvent, PartStartEvent, TextPart, TextPartDelta
from pydantic_ai.models.function import FunctionModel
from pydantic_ai.models.wrapper import WrapperModel

from .sinks import TokenBatch, add_sink, listening, remove_sink, sinks  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

INTERVAL = 0.05  # seconds between two batches of one response, at most (while text arrives)
MAX_CHARS = 400  # a batch goes out at once when this much text waits


def can_stream(model: Any) -> bool:
    """Whether ``model`` answers a streamed request (a ``FunctionModel`` needs a ``stream_function``)."""
    if isinstance(model, FunctionModel):
        return model.stream_function is not None
    if isinstance(model, WrapperModel):
        return can_stream(model.wrapped)
    return True


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _emit(batch: TokenBatch) -> None:
    for fn in sinks():
        try:
            fn(batch)
        except Exception:  # live tokens are a nicety: never fail a model request over them
            log.warning("publishing streamed tokens of %s failed", batch.path, exc_info=True)


class TokenStream:
    """The streamed text of one model request, published in batches."""

    def __init__(self, run_id: int, path: str, interval: float = INTERVAL, max_chars: int = MAX_CHARS) -> None:
        self.run_id, self.path, self.interval, self.max_chars = run_id, path, interval, max_chars
        self.text = ""
        self.sent = 0  # characters of text published
        self.offset = 0  # the same in UTF-16 code units
        self.flushed_at = time.monotonic()
        self.batches = 0

    def add(self, delta: str) -> None:
        self.text += delta
        if len(self.text) - self.sent >= self.max_chars or time.monotonic() - self.flushed_at >= self.interval:
            self.flush()

    def flush(self) -> None:
        self.flushed_at = time.monotonic()
        if self.sent >= len(self.text):
            return
        piece = self.text[self.sent :]
        _emit(TokenBatch(self.run_id, self.path, piece, self.offset, self.text))
        self.sent, self.offset, self.batches = len(self.text), self.offset + utf16_len(piece), self.batches + 1

    def close(self) -> None:
        _emit(TokenBatch(self.run_id, self.path, "", self.offset, self.text, done=True))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if time.monotonic() - self.flushed_at >= self.interval:
                self.flush()  # text that arrived and then the model paused

    @contextlib.asynccontextmanager
    async def ticking(self) -> AsyncIterator[TokenStream]:
        task = asyncio.create_task(self._tick())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def text_of(event: Any, so_far: str) -> str:
    """The text an event of a streamed response adds (a new text part after others starts a new paragraph)."""
    if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
        return ("\n\n" if so_far else "") + event.part.content
    if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        return event.delta.content_delta
    return ""


async def consume(stream: Any, run_id: int, path: str) -> ModelResponse:
    """Read a streamed response to its end, publishing its text as it arrives; the complete response."""
    if not listening():
        async for _ in stream:
            pass
        return stream.get()
    tokens = TokenStream(run_id, path)
    try:
        async with tokens.ticking():
            async for event in stream:
                delta = text_of(event, tokens.text)
                if delta:
                    tokens.add(delta)
        tokens.flush()
        return stream.get()
    finally:
        tokens.close()


async def request_streamed(model: Any, messages, model_settings, params, run_id: int, path: str) -> ModelResponse:
    """``model.request(...)`` made as a streamed request, its text published live."""
    async with model.request_stream(messages, model_settings, params) as stream:
        return await consume(stream, run_id, path)
