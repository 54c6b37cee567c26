"""Values stored once: a large input or output is kept in one place and referred to everywhere else.

A run's input lives in ``Run.input``; a step's output in its ``StepRun.output``. A value bigger than
``WORKFLOWS["INLINE_VALUE_BYTES"]`` that comes from one of those places is not copied: the row that needs it
(the next step's input, a retry's input, an output equal to the step's input, the run's output) holds a
*reference* in its ``input_ref``/``output_ref`` column and null in the value column. A reference is
``RUN_INPUT`` (0: the run's input) or the id of the StepRun whose ``output`` holds the value inline; it never
points to another reference, so reading one is at most one query. Smaller values are copied: a reference would
cost a query to save a few bytes.

Journal events carry a large value as ``{"$ref": where, "bytes": n}`` (``brief``); ``where`` ("input",
"output", "steps/<id>/input", "steps/<id>/output", "events/<id>") is read by the run's values endpoint
(``read``), which the dashboard fetches on demand.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db.models import TextField
from django.db.models.functions import Cast, Length

from .. import conf

if TYPE_CHECKING:
    from .models import Run, StepRun

RUN_INPUT = 0
_SCALARS = (type(None), bool, int, float)


def _model(name: str):
    """A model of this app (``models`` imports this module, so it is looked up, not imported)."""
    return apps.get_model("workflows", name)


def size_of(value: Any) -> int:
    """Bytes of ``value`` as the JSON text a JSONField stores."""
    if isinstance(value, _SCALARS):
        return 8
    if isinstance(value, str) and len(value) < 256:
        return len(value) + 2
    return len(json.dumps(value))


def inline_limit() -> int:
    return conf.get("INLINE_VALUE_BYTES")


def brief(value: Any, where: str, size: int | None = None) -> Any:
    """``value`` itself if small, else ``{"$ref": where, "bytes": size}`` (for a journal event)."""
    size = size_of(value) if size is None else size
    return value if size <= inline_limit() else {"$ref": where, "bytes": size}


def is_brief(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$ref", "bytes"}


def resolve(run: Run | int, ref: int) -> Any:
    """The value at ``ref`` (see the module's docstring) for ``run`` (a Run, or its id)."""
    if ref == RUN_INPUT:
        if isinstance(run, _model("Run")):
            return run.input
        return _model("Run").objects.filter(pk=run).values_list("input", flat=True).first()
    return _model("StepRun").objects.filter(pk=ref).values_list("output", flat=True).first()


def stored_size(run_id: int, ref: int) -> int:
    """Bytes of the JSON at ``ref``, measured by the database (the value is not read)."""
    rows = _model("Run").objects.filter(pk=run_id) if ref == RUN_INPUT else _model("StepRun").objects.filter(pk=ref)
    column = "input" if ref == RUN_INPUT else "output"
    return rows.annotate(n=Length(Cast(column, TextField()))).values_list("n", flat=True).first() or 0


def output_root(sr: StepRun) -> int | None:
    """Where a succeeded step's output is stored, if it is large: its ``output_ref``, or the row itself; None for
    a small output (copied where it is needed). Measured once per row object."""
    if sr.output_ref is not None:
        return sr.output_ref
    known = getattr(sr, "_output_root", False)
    if known is False:
        known = sr.pk if size_of(sr.output) > inline_limit() else None
        sr._output_root = known
    return known


def fill_step(sr: StepRun) -> StepRun:
    """``sr`` with its input and output values in place of references (in memory only: never saved)."""
    if sr.input_ref is not None and sr.input is None:
        sr.input = resolve(sr.run_id, sr.input_ref)
    if sr.output_ref is not None and sr.output is None:
        sr.output = resolve(sr.run_id, sr.output_ref)
    return sr


def fill_run_output(run: Run) -> None:
    """Called as a Run row is loaded with a null output: read the value of its ``output_ref``, if any."""
    if "output_ref" in run.__dict__:
        ref = run.output_ref
    else:  # loaded without it (a deferred output read on its own)
        ref = _model("Run").objects.filter(pk=run.pk).values_list("output_ref", flat=True).first()
    if ref is not None:
        run.__dict__["output"] = resolve(run if ref != RUN_INPUT or "input" in run.__dict__ else run.pk, ref)


def read(run: Run, where: str) -> tuple[bool, Any]:
    """The value ``where`` names in ``run`` (a journal event's ``$ref``): (found, value)."""
    inbound, steps = _model("InboundEvent").objects, _model("StepRun").objects
    parts = where.strip("/").split("/")
    if parts == ["input"]:
        return True, run.input
    if parts == ["output"]:
        return True, run.output
    if len(parts) == 3 and parts[0] == "steps" and parts[1].isascii() and parts[1].isdigit():
        if parts[2] not in ("input", "output", "suspend_payload", "resume_data"):
            return False, None
        sr = steps.filter(run=run, pk=int(parts[1])).first()
        return (True, getattr(fill_step(sr), parts[2])) if sr is not None else (False, None)
    if len(parts) == 2 and parts[0] == "events" and parts[1].isascii() and parts[1].isdigit():
        found = inbound.filter(run=run, pk=int(parts[1])).values_list("data", flat=True)
        return (True, found[0]) if found else (False, None)
    return False, None
