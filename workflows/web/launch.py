"""The launch form's helpers: prefilled from an earlier run ("launch again with this input"), and what it says
when its idempotency key already has a run."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest

from ..store import values
from ..store.models import Run


def from_run(request: HttpRequest, name: str) -> Run | None:
    """The run whose input prefills the launch form (``?from_run=<id>``, "launch again with this input"): one of
    this workflow's runs the user may see, with its input inline; otherwise a message says why not."""
    text = request.GET.get("from_run", "")
    if not text:
        return None
    run = None
    if text.isascii() and text.isdigit() and len(text) <= 18:
        run = Run.objects.visible_to(request.user).filter(pk=int(text), workflow__name=name).first()
    if run is None:
        messages.warning(request, f"No run {text[:20]!r} of {name} that you may see: the form is not prefilled.")
    elif values.is_brief(values.brief(run.input, "input")):
        messages.warning(request, f"The input of run #{run.pk} is too large to prefill the form.")
        run = None
    return run


def existing_message(run: Run) -> str:
    """ "A run with this key exists: #16, started with city=Lima" (its input's first fields, briefly)."""
    value = run.input
    if isinstance(value, dict):
        shown = ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in value.items())
    else:
        shown = json.dumps(value, default=str)
    shown = shown if len(shown) <= 120 else shown[:119] + "…"
    return f"A run with this key exists: #{run.pk}, started with {shown or 'no input'}"
