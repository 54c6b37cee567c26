"""Creating runs: from ``flow.start()``, as a nested child, or as a restart of an earlier run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from ..exceptions import InvalidInput
from ..store.models import Run
from ..store.workflow_rows import row_for
from . import debounce as debounced
from .advance import create_run, validated_input
from .inputs import accept, storable

if TYPE_CHECKING:
    from ..definition.dsl import Workflow


def start(
    flow: Workflow,
    data: Any,
    *,
    user: Any = None,
    idempotency_key: str | None = None,
    priority: int | None = None,
    debounce: Any = None,
) -> Run:
    """A new run, or the run this user (or, without a user, a start without one) made with the same key; with
    ``debounce``, the run its key's earlier starts are waiting in (``engine.debounce``). ``priority``: default the
    workflow's ``priority``."""
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise InvalidInput(f"priority must be an integer, got {priority!r}")
    if priority is not None and not -(2**31) < priority < 2**31:
        raise InvalidInput("priority must fit in 32 bits")
    priority = flow.priority if priority is None else priority
    accept(data, "workflow input")
    input_json = storable(validated_input(flow, data), "workflow input")
    if idempotency_key is not None and not (isinstance(idempotency_key, str) and 0 < len(idempotency_key) <= 255):
        raise InvalidInput("idempotency_key must be a non-empty string of at most 255 characters")
    if idempotency_key is not None and "\x00" in idempotency_key:
        raise InvalidInput("idempotency_key must not contain NUL characters (\\u0000)")
    workflow_id = row_for(flow)
    owner = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    scope = "" if owner is None else str(owner)  # a key is the user's own; without a user, shared by such starts
    if debounce is not None:
        if idempotency_key is not None:
            raise InvalidInput("give either idempotency_key or debounce, not both")
        return debounced.start(
            flow, input_json, debounce=debounce, owner_id=owner, scope=scope, workflow_id=workflow_id,
            priority=priority,
        )  # fmt: skip
    same_key = {"workflow_id": workflow_id, "idempotency_scope": scope, "idempotency_key": idempotency_key}
    if idempotency_key:
        existing = Run.objects.filter(**same_key).first()
        if existing:
            return existing
    try:
        with transaction.atomic():
            return create_run(
                flow, input_json, owner_id=owner, idempotency_key=idempotency_key, idempotency_scope=scope,
                workflow_id=workflow_id, priority=priority,
            )  # fmt: skip
    except IntegrityError:
        if idempotency_key:  # a concurrent start with the same key won
            return Run.objects.get(**same_key)
        raise
