"""The run page's actions (POST, CSRF): cancel, retry, restart, resume, send an event. Each goes through the
engine, which alone changes a status; the scripts get JSON (the API's error shape), a form without JavaScript a
redirect with a message."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from .. import engine
from ..exceptions import InvalidInput, WorkflowsError
from . import approvals, queries, services, throttle
from .forms import SchemaForm
from .views import count_errors, failure, throttled, visible_run, wants_json

THROTTLED_ACTIONS: dict[str, throttle.Kind] = {
    "retry": "start",
    "restart": "start",
    "resume": "resume",
    "send-event": "event",
}


@login_required
@require_POST
def run_action(request: HttpRequest, run_id: int, action: str) -> HttpResponse:
    run = visible_run(request, run_id)
    page = reverse("workflows:run", args=[run.pk])
    try:
        services.operable_run(request.user, run.pk)
    except services.ServiceError as exc:
        return _action_result(request, page, False, exc.message, status=exc.status)
    form = None
    by = request.user.get_username()  # recorded in the journal: the history says who acted
    try:
        if action in THROTTLED_ACTIONS:
            throttle.check(request, THROTTLED_ACTIONS[action])
    except throttle.Throttled as exc:
        return throttled(request, exc)
    try:
        if action == "cancel":
            engine.cancel(run.pk, by=by)
            return _action_result(request, page, True, f"Run #{run.pk} canceled.")
        if action == "retry":
            new = engine.retry(run.pk, by=by)
            url = reverse("workflows:run", args=[new.pk])
            return _action_result(request, url, True, f"Retrying as run #{new.pk}.", redirect_to=url)
        if action == "restart":
            step = request.POST.get("from_step", "").strip()
            if not step:
                raise InvalidInput("Choose the step to restart from")
            new = engine.restart(run.pk, from_step=step, by=by)
            url = reverse("workflows:run", args=[new.pk])
            return _action_result(request, url, True, f"Restarted from {step} as run #{new.pk}.", redirect_to=url)
        if action == "resume":
            step = request.POST.get("step", "").strip() or None
            targets = queries.resume_targets(run)
            target = next((t for t in targets if t["path"] == step), None) if step else None
            if target is None and not step and len(targets) == 1:
                target = targets[0]
            if request.POST.get("decision") in approvals.DECISIONS:  # an agent's tool call: approve, deny, edit
                data, form = approvals.decision_from(request.POST, run, target)
            else:
                form = SchemaForm(target["schema"] if target else None, prefix="data").bind(request.POST)
                data = form.value
            if form is not None and form.has_errors:
                raise InvalidInput("Invalid resume data")
            engine.resume(run.pk, step=step, data=data, by=by)
            return _action_result(request, page, True, f"Step {step or ''} resumed.".replace("  ", " "))
        if action == "send-event":
            name = request.POST.get("name", "").strip()
            block = next((b for b in queries.graph_of_run(run).get("blocks", []) if b.get("event") == name), None)
            form = SchemaForm((block or {}).get("output_schema") or {}, prefix="data").bind(request.POST)
            if form.has_errors:
                raise InvalidInput("Invalid event data")
            engine.send_event(run.pk, name, form.value, by=by)
            return _action_result(request, page, True, f"Event “{name}” sent.")
    except InvalidInput as exc:
        errors = []
        if form is not None:
            form.add_errors(approvals.form_errors(request.POST, exc.errors), "" if form.has_errors else str(exc))
            errors = form.error_list()
        message = count_errors(errors) if errors and any(e["field"] for e in errors) else str(exc)
        return _action_result(request, page, False, message, errors=errors, status=400)
    except WorkflowsError as exc:  # the API's status and message for the same refusal (services)
        refused = services.refusal(exc)
        return _action_result(request, page, False, refused.message, status=refused.status)
    raise Http404(f"Unknown action {action!r}")


def _action_result(
    request: HttpRequest,
    page: str,
    ok: bool,
    message: str,
    *,
    errors: list | None = None,
    status: int = 200,
    redirect_to: str | None = None,
) -> HttpResponse:
    if wants_json(request):
        body = {"ok": True, "message": message, "errors": []} if ok else failure(message, errors or [])
        if redirect_to:
            body["redirect"] = redirect_to
        return JsonResponse(body, status=status)
    if not ok and status == 403:  # a form this user was never shown (a viewer's stale page): the 403 page
        raise PermissionDenied(message)
    if ok:
        messages.success(request, message)
    else:
        details = "; ".join(f"{e['field'] or ''} {e['msg']}".strip() for e in errors or [])
        messages.error(request, f"{message} {details}".strip())
    return redirect(redirect_to or page)
