"""Bulk actions of the runs list: cancel or retry the selected runs.

Each run is checked on its own (visible, and changeable by this user) and handed to the engine's own ``cancel`` /
``retry``, which alone change a status; a run that cannot be canceled or retried is reported in the results, it
does not fail the others. Retries count against the user's start rate limit, one per run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .. import engine
from ..exceptions import WorkflowsError
from . import services, throttle
from .views import failure, wants_json

Action = Literal["cancel", "retry"]
ACTIONS: tuple[str, ...] = ("cancel", "retry")
MAX_RUNS = 200  # a page of runs at most (``queries.MAX_PAGE_SIZE``)


class BulkError(ValueError):
    """The request itself is wrong (unknown action, no run, too many, an id that is not a number): 400."""


@dataclass
class Outcome:
    run: int
    ok: bool
    message: str
    new_run: int | None = None  # a retry's new run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse(action: str, ids: list[str]) -> tuple[Action, list[int]]:
    """The action and the distinct run ids, in the order given; BulkError for a bad request."""
    if action not in ACTIONS:
        raise BulkError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    runs: list[int] = []
    for text in ids:
        text = str(text).strip().removeprefix("#")
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            raise BulkError(f"run ids are numbers, not {text[:30]!r}")
        if int(text) not in runs:
            runs.append(int(text))
    if not runs:
        raise BulkError("select at least one run")
    if len(runs) > MAX_RUNS:
        raise BulkError(f"at most {MAX_RUNS} runs at once ({len(runs)} selected)")
    return action, runs  # type: ignore[return-value]


def apply(request: HttpRequest, action: Action, run_ids: list[int]) -> list[Outcome]:
    """Cancel or retry each run in turn; one outcome per run, in order."""
    outcomes: list[Outcome] = []
    for run_id in run_ids:
        try:
            services.operable_run(request.user, run_id)
            if action == "cancel":
                engine.cancel(run_id)
                outcomes.append(Outcome(run_id, True, f"#{run_id} canceled"))
            else:
                throttle.check(request, "start")
                new = engine.retry(run_id)
                outcomes.append(Outcome(run_id, True, f"#{run_id} retried as #{new.pk}", new.pk))
        except throttle.Throttled as exc:
            outcomes.append(Outcome(run_id, False, f"#{run_id}: {exc}"))
        except (services.ServiceError, WorkflowsError) as exc:
            refused = services.refusal(exc)
            outcomes.append(Outcome(run_id, False, f"#{run_id}: {refused.message if refused else exc}"))
    return outcomes


def summary(action: Action, outcomes: list[Outcome]) -> str:
    """One line for the page: "2 canceled; 1 could not be: #7: Run 7 is already succeeded; cannot cancel it"."""
    done = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    verb = "canceled" if action == "cancel" else "retried"
    text = f"{len(done)} run{'s' if len(done) != 1 else ''} {verb}"
    if failed:
        text += f"; {len(failed)} could not be: " + "; ".join(o.message for o in failed[:10])
        if len(failed) > 10:
            text += f"; and {len(failed) - 10} more"
    return text + "."


@login_required
@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    """POST ``action`` and ``run`` (repeated): JSON ``{ok, message, results}`` for the list's script, else back to
    the list (its ``next``, a path of this site) with the summary as a message."""
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        back = ""
    back = back or reverse("workflows:runs")
    try:
        action, run_ids = parse(request.POST.get("action", ""), request.POST.getlist("run"))
    except BulkError as exc:
        if wants_json(request):
            return JsonResponse(failure(str(exc).capitalize(), []), status=400)
        messages.error(request, str(exc).capitalize())
        return redirect(back)
    outcomes = apply(request, action, run_ids)
    text = summary(action, outcomes)
    if wants_json(request):
        return JsonResponse(
            {"ok": all(o.ok for o in outcomes), "message": text, "results": [o.as_dict() for o in outcomes]}
        )
    (messages.success if all(o.ok for o in outcomes) else messages.warning)(request, text)
    return redirect(back)
