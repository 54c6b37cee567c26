"""The API's request and response bodies (pydantic): the OpenAPI document is generated from them, and every
answer is validated against its schema before it leaves. JSON the user owns (inputs, outputs, graphs, step data)
is ``Any``; the shapes this app defines are typed."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ...store.models import RunStatus, StepStatus

RunStatusName = Literal[tuple(RunStatus.values)]  # type: ignore[valid-type]
StepStatusName = Literal[tuple(StepStatus.values)]  # type: ignore[valid-type]


class Strict(BaseModel):
    """A request body: unknown fields are refused (a typo is a 400, not silently ignored)."""

    model_config = ConfigDict(extra="forbid")


# --- errors ----------------------------------------------------------------------------------------------------


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every refusal: ``error`` says what went wrong; ``errors`` lists invalid fields (pydantic's shape)."""

    error: str
    errors: list[ErrorItem] | None = None


ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 405: ErrorOut, 413: ErrorOut}
THROTTLED = {429: ErrorOut}  # over a per-user rate limit (web.throttle), with Retry-After
# the 429's header in the OpenAPI document (an operation's openapi_extra, merged into what ninja generates)
RETRY_AFTER = {
    "responses": {
        429: {  # an int, as ninja keys its responses: merged into its 429, not beside it
            "description": "Over a per-user rate limit (WORKFLOWS['RATE_LIMITS'])",
            "headers": {
                "Retry-After": {
                    "description": "seconds to wait before the next request of this kind is allowed",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        }
    }
}

# --- workflows -------------------------------------------------------------------------------------------------


class IndexOut(BaseModel):
    workflows: str
    runs: str
    openapi: str
    docs: str
    live: str = Field(description="the live-updates websocket's path (Authorization: Bearer on the handshake)")


class WorkflowUrls(BaseModel):
    page: str
    api: str
    runs: str


class WorkflowOut(BaseModel):
    name: str
    description: str
    version: str
    launchable: bool = Field(description="registered in this process: runs can be started")
    stats: dict[str, Any] = Field(description="runs_24h, succeeded_24h, failed_24h, active, success_rate, …")
    urls: WorkflowUrls


class WorkflowDetailOut(WorkflowOut):
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    graph: dict[str, Any] = Field(description="Graph.to_json(): blocks, steps, schemas")


class WorkflowListOut(BaseModel):
    workflows: list[WorkflowOut]


class DebounceIn(Strict):
    """Starts with the same key within ``seconds`` collapse into one run, started with the last input once no
    start came for ``seconds`` (or ``max_wait`` after the first)."""

    key: str = Field(description="per user: another user's starts never collapse with yours")
    seconds: float
    max_wait: float | None = None


class StartIn(Strict):
    input: Any = Field(None, description="the workflow's input, validated against its input_schema")
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=255, description="a key you used before for this workflow returns that run"
    )
    debounce: DebounceIn | None = Field(None, description="instead of an idempotency_key: 202, the waiting run")
    priority: StrictInt | None = Field(
        None, description="higher goes first where steps wait for a pool's slot (0 by default; 32-bit)"
    )


# --- runs ------------------------------------------------------------------------------------------------------


class RunUrls(BaseModel):
    page: str
    api: str


class Tokens(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class RunOut(BaseModel):
    id: int
    workflow: str
    status: RunStatusName
    seq: int = Field(description="the newest journal seq")
    progress: float | None
    idempotency_key: str | None
    created_by: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime
    duration: float | None = Field(description="seconds")
    tokens: Tokens | None = Field(None, description="its agent steps' tokens (in lists)")
    urls: RunUrls


class StepRow(BaseModel):
    id: int
    block: int
    path: str
    step_id: str
    kind: str
    index: int | None
    attempt: int
    status: StepStatusName
    pool: str
    label: str
    worker: str
    created_at: dt.datetime
    queued_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    due_at: dt.datetime | None
    error: Any


class RelatedRun(BaseModel):
    id: int
    status: RunStatusName
    workflow: str | None = None
    step: str | None = None


class Related(BaseModel):
    parent: RelatedRun | None
    children: list[RelatedRun]
    restarted_from: RelatedRun | None
    restarts: list[RelatedRun]


class Suspended(BaseModel):
    path: str
    label: str
    payload: Any
    schema_: dict[str, Any] | None = Field(alias="schema", serialization_alias="schema")

    model_config = ConfigDict(populate_by_name=True)


class Waiting(BaseModel):
    """A pending step and why it waits."""

    path: str
    pool: str
    reason: str = Field(description="paused, rate, backoff, key, pool_full, priority, foreach or admitting")
    message: str
    until: dt.datetime | None = Field(description="when it may go, if known")


class RunDetailOut(RunOut):
    version: str
    priority: int
    waiting: list[Waiting] = Field(description="its pending steps and why each waits (active runs)")
    input: Any
    output: Any
    error: Any
    traceback: str
    state: Any
    last_seq: int
    usage: dict[str, Any]
    steps: list[StepRow]
    related: Related
    suspended: list[Suspended]


class RunPageOut(BaseModel):
    runs: list[RunOut]
    count: int
    count_capped: bool = Field(description="count stopped at its cap: there are more")
    next: str | None = Field(description="the next (older) page's URL")
    previous: str | None = Field(description="the previous (newer) page's URL")


class EventOut(BaseModel):
    seq: int
    kind: str
    step: str
    data: Any
    at: dt.datetime


class EventsOut(BaseModel):
    events: list[EventOut]
    last_seq: int
    more: bool


class StepAttempt(StepRow):
    input: Any
    output: Any
    traceback: str
    suspend_payload: Any
    resume_data: Any
    duration: float | None
    child_runs: list[int]


class LogLine(BaseModel):
    seq: int
    message: Any
    at: dt.datetime


class StepDetailOut(BaseModel):
    path: str
    attempts: list[StepAttempt]
    logs: list[LogLine]


class ValueOut(BaseModel):
    value: Any
    bytes: int = Field(description="its size as JSON")


class ResumeIn(Strict):
    step: str | None = Field(None, min_length=1, max_length=255, description="omit when one step is suspended")
    label: str | None = Field(None, min_length=1, max_length=255)
    data: Any = None


class EventIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    data: Any = None


class RestartIn(Strict):
    from_step: str = Field(min_length=1, max_length=100)
    input: Any = Field(None, description="a new input (null: the run's own)")
