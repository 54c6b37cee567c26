"""Dashboard pages for schedules: a schedule's page (its definition, next fire times and last runs; an edit form
for staff and holders of ``workflows.change_schedule``), the new-schedule form, and pause/resume/delete.

The workflow page lists its schedules (``schedules.page_rows``). Changes go through ``engine.schedule_admin``;
a code-defined schedule may only be paused or resumed here.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from ..definition import schedule as cronlib
from ..engine import schedule_admin
from ..exceptions import InvalidInput, InvalidTransition, UnknownWorkflow
from ..store.scheduling import Schedule
from . import queries
from .schedules import can_change_schedules, last_fires, next_times, shown, with_statuses


class ScheduleForm(forms.Form):
    name = forms.CharField(required=False, max_length=100, help_text="Optional: derived from the cron and input")
    cron = forms.CharField(max_length=cronlib.CRON_MAX, help_text="minute hour day month weekday, e.g. 0 3 * * *")
    timezone = forms.CharField(max_length=64, initial="UTC", help_text="IANA name, e.g. Europe/Lisbon")
    input = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="JSON")
    overlap = forms.ChoiceField(choices=[(c, c) for c in cronlib.OVERLAP], initial="skip")
    catchup = forms.ChoiceField(label="Catch-up", choices=[(c, c) for c in cronlib.CATCHUP], initial="latest")
    paused = forms.BooleanField(required=False)

    def clean_input(self) -> Any:
        raw = self.cleaned_data["input"].strip()
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from None

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        if not data.get("name"):
            data.pop("name", None)
        return data

    def add_service_errors(self, exc: InvalidInput) -> None:
        for e in exc.errors or [{"loc": [], "msg": str(exc)}]:
            field = e["loc"][0] if e.get("loc") and e["loc"][0] in self.fields else None
            self.add_error(field, e["msg"])


def _writer(request: HttpRequest) -> None:
    if not can_change_schedules(request.user):
        raise PermissionDenied("Changing schedules takes staff or the workflows.change_schedule permission")


def _initial(s: Schedule) -> dict[str, Any]:
    return {**s.as_definition(), "name": s.name, "paused": s.paused, "input": json.dumps(s.input)}


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def schedule_new(request: HttpRequest, name: str) -> HttpResponse:
    info = queries.workflow_info(name)
    if info is None:
        raise Http404(f"No workflow named {name!r}")
    _writer(request)
    form = ScheduleForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                s = schedule_admin.create(name, form.values(), user=request.user)
            except InvalidInput as exc:
                form.add_service_errors(exc)
            except UnknownWorkflow as exc:
                form.add_error(None, str(exc))
                status = 409
            else:
                messages.success(request, f"Schedule {s.name} created; next run {s.next_due:%Y-%m-%d %H:%M} UTC.")
                return redirect(reverse("workflows:workflow", args=[name]) + "#schedules")
    context = {"info": info, "form": form, "schedule": None, "can_change": True}
    return render(request, "workflows/schedule.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def schedule_detail(request: HttpRequest, schedule_id: int) -> HttpResponse:
    s = get_object_or_404(Schedule.objects.select_related("workflow"), pk=schedule_id)
    form = ScheduleForm(initial=_initial(s))
    status = 200
    if request.method == "POST":
        _writer(request)
        form = ScheduleForm(request.POST)
        status = 400
        if s.from_code:
            form.add_error(None, "This schedule is defined in code: change it there (it may only be paused here)")
            status = 409
        elif form.is_valid():
            try:
                s = schedule_admin.update(s, form.values())
            except InvalidInput as exc:
                form.add_service_errors(exc)
            except (InvalidTransition, UnknownWorkflow) as exc:
                form.add_error(None, str(exc))
                status = 409
            else:
                messages.success(request, f"Schedule {s.name} saved.")
                return redirect("workflows:schedule", schedule_id=s.pk)
    context = {
        "info": queries.workflow_info(s.workflow.name),
        "form": form,
        "schedule": s,
        "next": [shown(t) for t in next_times(s)],
        "fires": with_statuses(last_fires(s, request.user, limit=20)),
        "can_change": can_change_schedules(request.user),
    }
    return render(request, "workflows/schedule.html", context, status=status)


@login_required
@require_POST
def schedule_action(request: HttpRequest, schedule_id: int, action: str) -> HttpResponse:
    s = get_object_or_404(Schedule.objects.select_related("workflow"), pk=schedule_id)
    _writer(request)
    back = reverse("workflows:workflow", args=[s.workflow.name]) + "#schedules"
    try:
        if action in ("pause", "resume"):
            s = schedule_admin.set_paused(s, action == "pause")
            messages.success(request, f"Schedule {s.name} {'paused' if s.paused else 'resumed'}.")
        elif action == "delete":
            schedule_admin.delete(s)
            messages.success(request, f"Schedule {s.name} deleted.")
        else:
            raise Http404(f"Unknown action {action!r}")
    except InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect(back)
