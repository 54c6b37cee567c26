"""Creating runs: from ``flow.start()``, as a nested child, or as a restart of an earlier run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from .. import registry, statements
from ..events import Journal
from ..exceptions import InvalidInput
from ..models import Run
from ..schema import jsonable
from .advance import enter
from .core import save

if TYPE_CHECKING:
    from ..dsl import Workflow


def validated_input(flow: Workflow, data: Any) -> Any:
    """The run input as stored JSON; InvalidInput before anything is written."""
    graph = flow.graph
    value = graph.typed_input(data)
    return jsonable(data) if graph.input.is_any else graph.input.dump(value)


def start(flow: Workflow, data: Any, *, user: Any = None, idempotency_key: str | None = None) -> Run:
    input_json = validated_input(flow, data)
    if idempotency_key is not None and not (isinstance(idempotency_key, str) and 0 < len(idempotency_key) <= 255):
        raise InvalidInput("idempotency_key must be a non-empty string of at most 255 characters")
    workflow_id = registry.row_for(flow)
    if idempotency_key:
        existing = Run.objects.filter(workflow_id=workflow_id, idempotency_key=idempotency_key).first()
        if existing:
            return existing
    owner = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            return create_run(flow, input_json, owner_id=owner, idempotency_key=idempotency_key)
    except IntegrityError:
        if idempotency_key:  # a concurrent start with the same key won
            return Run.objects.get(workflow_id=workflow_id, idempotency_key=idempotency_key)
        raise


def create_run(
    flow: Workflow,
    input_json: Any,
    *,
    owner_id: int | None = None,
    idempotency_key: str | None = None,
    parent_step=None,
    state: Any = None,
) -> Run:
    """Create a run and enter its first block (call inside a transaction)."""
    graph = flow.graph
    if graph.state is not None:
        try:
            state = graph.state.dump(graph.state.validate(state, "state")) if state is not None else None
        except InvalidInput:
            state = None  # a parent's state that does not fit this workflow's state type
        state = state if state is not None else graph.initial_state()
    run = Run(
        workflow_id=registry.row_for(flow),
        version=graph.version,
        input=input_json,
        created_by_id=owner_id,
        idempotency_key=idempotency_key,
        parent_step=parent_step,
        state=state,
    )
    statements.insert(run)
    statements.attach_workflow(run, flow.name)  # its name for the journal's publication, without a query
    run._locked_status = None
    journal = Journal(run)
    journal.add("run_created", input=input_json, version=graph.version, parent_step=parent_step and parent_step.pk)
    enter(run, graph, 0, input_json, journal)
    save(run, journal)
    return run
