"""Admin: read-only views of workflows, runs, steps and the journal; actions go through the engine.

Rows are never edited here (the engine alone changes a status): cancel and retry are admin actions that call
``engine.cancel`` / ``engine.retry``. Every run links to its live page on the dashboard ("View on site"). The
status badges' styles ship with the app (static/workflows/admin.css, through each ModelAdmin's ``Media``), so any
project's admin shows them.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import engine
from .exceptions import WorkflowsError
from .store.models import (
    STEP_HOLDS_SLOT,
    ApiToken,
    InboundEvent,
    Pool,
    Run,
    RunEvent,
    RunStatus,
    StepRun,
    Workflow,
    WorkflowVersion,
)
from .web.drawing import STATUS_ICONS

JOURNAL_PREVIEW = 10  # the latest journal events a run's admin page shows; the rest: a link to the journal's list
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # the admin's own format shows no seconds; steps take milliseconds


def _badge(status: str):
    return format_html(
        '<span class="wf-badge wf-status-{}">{} {}</span>', status, STATUS_ICONS.get(status, "•"), status
    )


class BadgeMedia:
    css = {"all": ["workflows/admin.css"]}


def _json(value) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;max-height:24em;overflow:auto;margin:0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, default=str),
    )


def _time(value) -> str:
    """A time to the millisecond, in the current time zone (Django's DATETIME_FORMAT stops at minutes)."""
    if value is None:
        return "—"
    return timezone.localtime(value).strftime(TIME_FORMAT)[:-3]


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "description", "version", "run_count", "dashboard", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["name", "description", "version", "graph_json", "input_json", "output_json", "updated_at"]
    exclude = ["graph", "input_schema", "output_schema"]

    def has_delete_permission(self, request, obj=None):
        return False  # rows mirror the code in flows.py; runs point at them

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_runs=Count("runs"))

    def view_on_site(self, obj):
        return reverse("workflows:workflow", args=[obj.name])

    @admin.display(description="runs", ordering="n_runs")
    def run_count(self, obj):
        url = reverse("admin:workflows_run_changelist") + f"?workflow__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.n_runs)

    @admin.display(description="dashboard")
    def dashboard(self, obj):
        return format_html('<a href="{}">open ↗</a>', reverse("workflows:workflow", args=[obj.name]))

    @admin.display(description="graph")
    def graph_json(self, obj):
        return _json(obj.graph)

    @admin.display(description="input schema")
    def input_json(self, obj):
        return _json(obj.input_schema)

    @admin.display(description="output schema")
    def output_json(self, obj):
        return _json(obj.output_schema)


class TimesMixin:
    """A step's or run's start and end, to the millisecond."""

    @admin.display(description="started at", ordering="started_at")
    def started(self, obj):
        return _time(obj.started_at)

    @admin.display(description="finished at", ordering="finished_at")
    def finished(self, obj):
        return _time(obj.finished_at)


class StepRunInline(TimesMixin, ReadOnlyMixin, admin.TabularInline):
    model = StepRun
    fields = ["block", "path", "attempt", "status", "pool", "worker", "started", "finished", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["pk"]


@admin.action(description="Cancel the selected runs (through the engine)")
def cancel_runs(modeladmin, request, queryset):
    done = 0
    for run_id in queryset.active().values_list("pk", flat=True):
        try:
            engine.cancel(run_id, by=request.user.get_username())
            done += 1
        except WorkflowsError as exc:
            modeladmin.message_user(request, f"Run {run_id}: {exc}", messages.WARNING)
    modeladmin.message_user(request, f"Canceled {done} run(s).")


@admin.action(description="Retry the selected failed or canceled runs (each as a new run)")
def retry_runs(modeladmin, request, queryset):
    made = []
    for run_id in queryset.filter(status__in=(RunStatus.FAILED, RunStatus.CANCELED)).values_list("pk", flat=True):
        try:
            made.append(engine.retry(run_id, by=request.user.get_username()).pk)
        except WorkflowsError as exc:
            modeladmin.message_user(request, f"Run {run_id}: {exc}", messages.WARNING)
    skipped = queryset.count() - len(made)
    text = f"Started {len(made)} retry run(s)" + (f": {', '.join(f'#{i}' for i in made)}" if made else "")
    if skipped:
        text += f"; {skipped} run(s) were not failed or canceled, or could not be retried"
    modeladmin.message_user(request, text + ".")


@admin.register(Run)
class RunAdmin(TimesMixin, ReadOnlyMixin, admin.ModelAdmin):
    Media = BadgeMedia
    list_display = ["id", "workflow", "colored_status", "created_by", "idempotency_key", "created", "took", "live"]
    list_display_links = ["id"]
    list_filter = ["status", "workflow", ("created_at", admin.DateFieldListFilter), "created_by"]
    search_fields = ["=id", "idempotency_key", "workflow__name"]
    list_select_related = ["workflow", "created_by"]
    readonly_fields = [
        "id", "workflow", "version", "colored_status", "live", "created_by", "idempotency_key", "parent_run",
        "restarted_from", "created", "started", "finished", "took", "cursor", "last_seq",
        "input_json", "output_json", "error_json", "traceback", "state_json", "journal",
    ]  # fmt: skip
    exclude = ["input", "output", "output_ref", "error", "state", "parent_step", "status"]
    # The journal is not an inline: a run may have 100,000s of events. The page shows the latest few and links to
    # the journal's own (paginated, filterable) list and to the dashboard's run page.
    inlines = [StepRunInline]
    actions = [cancel_runs, retry_runs]
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting 100,000s of runs on every list page is slow
    list_per_page = 50

    def view_on_site(self, obj):
        return reverse("workflows:run", args=[obj.pk])

    @admin.display(description="created at", ordering="created_at")
    def created(self, obj):
        return _time(obj.created_at)

    @admin.display(description="journal")
    def journal(self, obj):
        """The latest events (one query, bounded) and a link to all of them in the journal's list."""
        latest = list(RunEvent.objects.filter(run=obj).order_by("-seq")[:JOURNAL_PREVIEW])[::-1]
        url = reverse("admin:workflows_runevent_changelist") + f"?run__id__exact={obj.pk}"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((e.seq, e.kind, e.step or "—", _time(e.at)) for e in latest),
        )
        return format_html(
            '<p><a href="{}">All {} events of this run ↗</a> (a paginated list, filterable by kind)</p>'
            "<table><caption>The latest {}</caption><thead><tr><th>seq</th><th>kind</th><th>step</th>"
            "<th>at</th></tr></thead><tbody>{}</tbody></table>",
            url, obj.last_seq, len(latest), rows,
        )  # fmt: skip

    @admin.display(description="status", ordering="status")
    def colored_status(self, obj):
        return _badge(obj.status)

    @admin.display(description="duration")
    def took(self, obj):
        if obj.started_at and not obj.finished_at:
            return f"running {_seconds((timezone.now() - obj.started_at).total_seconds())}"
        return _seconds(obj.duration)

    @admin.display(description="dashboard")
    def live(self, obj):
        return format_html('<a href="{}">watch live ↗</a>', reverse("workflows:run", args=[obj.pk]))

    @admin.display(description="parent run")
    def parent_run(self, obj):
        if not obj.parent_step_id:
            return "—"
        step = obj.parent_step
        url = reverse("admin:workflows_run_change", args=[step.run_id])
        return format_html('<a href="{}">#{}</a> (step {})', url, step.run_id, step.path)

    @admin.display(description="input")
    def input_json(self, obj):
        return _json(obj.input)

    @admin.display(description="output")
    def output_json(self, obj):
        return _json(obj.output)

    @admin.display(description="error")
    def error_json(self, obj):
        return _json(obj.error) if obj.error else "—"

    @admin.display(description="state")
    def state_json(self, obj):
        return _json(obj.state) if obj.state is not None else "—"


@admin.register(StepRun)
class StepRunAdmin(TimesMixin, ReadOnlyMixin, admin.ModelAdmin):
    Media = BadgeMedia
    list_display = [
        "id",
        "run_link",
        "path",
        "kind",
        "attempt",
        "colored_status",
        "pool",
        "worker",
        "started",
        "took",
    ]
    list_filter = ["status", "kind", "pool"]
    search_fields = ["=run__id", "path", "step_id"]
    list_select_related = ["run__workflow"]
    readonly_fields = [f.name for f in StepRun._meta.fields]
    show_full_result_count = False

    def view_on_site(self, obj):
        return reverse("workflows:run", args=[obj.run_id])

    @admin.display(description="run", ordering="run")
    def run_link(self, obj):
        url = reverse("admin:workflows_run_change", args=[obj.run_id])
        return format_html('<a href="{}">{} #{}</a>', url, obj.run.workflow.name, obj.run_id)

    @admin.display(description="status", ordering="status")
    def colored_status(self, obj):
        return _badge(obj.status)

    @admin.display(description="duration")
    def took(self, obj):
        return _seconds(obj.duration)


@admin.register(RunEvent)
class RunEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The journal: a run's events are ``?run__id__exact=<id>`` (the run's admin page links there)."""

    list_display = ["run", "seq", "kind", "step", "time"]
    list_filter = ["kind"]
    search_fields = ["=run__id", "step", "kind"]
    list_select_related = ["run__workflow"]
    readonly_fields = [f.name for f in RunEvent._meta.fields]
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="at", ordering="at")
    def time(self, obj):
        return _time(obj.at)

    def view_on_site(self, obj):
        return reverse("workflows:run", args=[obj.run_id])


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "run", "name", "received_at", "consumed_by"]
    list_filter = ["name"]
    search_fields = ["=run__id", "name"]
    list_select_related = ["run__workflow", "consumed_by"]
    readonly_fields = [f.name for f in InboundEvent._meta.fields]
    show_full_result_count = False


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["workflow", "version", "created_at"]
    list_filter = ["workflow"]
    search_fields = ["workflow__name", "version"]
    readonly_fields = [f.name for f in WorkflowVersion._meta.fields]


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    """Pools change at runtime here (through ``engine.pool_control``): ``limit`` (empty: the settings'
    ``max_parallel``) and ``paused``; every process sees the change at its next admission."""

    list_display = ["name", "max_parallel", "limit", "paused", "busy"]
    list_editable = ["limit", "paused"]
    fields = ["name", "max_parallel", "limit", "paused"]
    readonly_fields = ["name", "max_parallel"]
    actions = ["pause_pools", "resume_pools"]

    def has_add_permission(self, request, obj=None):
        return False  # pools are named in settings

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            engine.pool_control.set_limit(obj.name, obj.limit)
            (engine.pool_control.pause if obj.paused else engine.pool_control.resume)(obj.name)
        except WorkflowsError as exc:
            messages.error(request, str(exc))

    @admin.action(description="Pause the selected pools")
    def pause_pools(self, request, queryset):
        for name in queryset.values_list("name", flat=True):
            engine.pool_control.pause(name)

    @admin.action(description="Resume the selected pools")
    def resume_pools(self, request, queryset):
        for name in queryset.values_list("name", flat=True):
            engine.pool_control.resume(name)

    @admin.display(description="queued + running")
    def busy(self, obj):
        return StepRun.objects.filter(pool=obj.name, status__in=STEP_HOLDS_SLOT).count()


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Every user's API tokens: see them and revoke (delete) them. Created on the dashboard's Tokens page, where the
    secret is shown once; only its hash is stored, so none can be added or edited here."""

    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at")
    list_filter = ("created_at", "expires_at")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "name", "prefix", "created_at", "expires_at", "last_used_at")
    exclude = ("digest",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


from . import admin_schedules  # noqa: E402,F401  (Schedule and its fires)
