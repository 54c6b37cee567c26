"""What the JSON API and the dashboard's actions share: finding the run a user may see or change, starting a run
with a per-user idempotency key, and the one error shape (``{"error", "errors"?}``) with its HTTP status.

Both call the engine through here, so that a refusal is the same status and message wherever it is asked for.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404

from .. import conf, engine
from ..definition import registry
from ..exceptions import InvalidInput, InvalidTransition, UnknownWorkflow, WorkflowsError
from ..store.models import Run
from .permissions import can_operate

MAX_ID = 2**63 - 1  # a larger id cannot be in the table (and SQLite cannot even compare it)


class ServiceError(Exception):
    """A refusal with its HTTP status; ``errors`` are pydantic-style ``{loc, msg, type}``."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def error_body(message: str, errors: list | None = None) -> dict[str, Any]:
    """The one error shape of the API and the dashboard's scripts."""
    body: dict[str, Any] = {"error": message}
    if errors is not None:
        body["errors"] = errors
    return body


def refusal(exc: Exception) -> ServiceError | None:
    """The status and message for an exception the engine or Django raised for a bad request, else None."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, InvalidInput):
        return ServiceError(400, str(exc), exc.errors)
    if isinstance(exc, InvalidTransition):
        return ServiceError(409, str(exc))
    if isinstance(exc, UnknownWorkflow):
        return ServiceError(404, str(exc))
    if isinstance(exc, WorkflowsError):
        return ServiceError(400, str(exc))
    if isinstance(exc, Http404):
        return ServiceError(404, str(exc) or "Not found")
    if isinstance(exc, RequestDataTooBig):
        from django.conf import settings

        limit = min(conf.get("MAX_INPUT_BYTES"), settings.DATA_UPLOAD_MAX_MEMORY_SIZE or float("inf"))
        return ServiceError(413, f"Request body too large: at most {limit} bytes are accepted")
    if isinstance(exc, SuspiciousOperation):  # TooManyFieldsSent and the like: Django would answer an HTML page
        return ServiceError(400, f"Bad request: {exc}")
    return None


refusal.handled = (ServiceError, WorkflowsError, Http404, SuspiciousOperation)  # type: ignore[attr-defined]


def visible_run(user: Any, run_id: int) -> Run:
    run = None
    if 0 < run_id <= MAX_ID:
        run = Run.objects.visible_to(user).select_related("workflow", "created_by").filter(pk=run_id).first()
    if run is None:
        raise ServiceError(404, f"No run {run_id} that you may see")
    return run


def operable_run(user: Any, run_id: int) -> Run:
    run = visible_run(user, run_id)
    if not can_operate(user, run):
        raise ServiceError(403, "You may see this run but not change it")
    return run


def start(
    user: Any, name: str, input: Any, idempotency_key: str | None = None, priority: int | None = None
) -> tuple[Run, bool]:
    """(the run, whether it is new). A key the user used before for this workflow returns that run; keys are per
    user, so another user's key is neither in the way nor revealed."""
    flow = registry.get(name)
    key = idempotency_key
    mine = {"workflow__name": name, "idempotency_scope": str(user.pk), "idempotency_key": key}
    existed = bool(key) and "\x00" not in key and Run.objects.filter(**mine).exists()
    started = engine.start(flow, input, user=user, idempotency_key=key, priority=priority)
    run = Run.objects.visible_to(user).select_related("workflow", "created_by").filter(pk=started.pk).first()
    if run is None:
        raise ServiceError(409, "A run with this idempotency key already exists (started by someone else)")
    return run, not existed


def start_debounced(user: Any, name: str, input: Any, debounce: tuple, priority: int | None = None) -> Run:
    """The pending run this user's starts with the debounce key collapse into (``engine.debounce``)."""
    started = engine.start(registry.get(name), input, user=user, debounce=debounce, priority=priority)
    return Run.objects.select_related("workflow", "created_by").get(pk=started.pk)
