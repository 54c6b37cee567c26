"""Admin: read-mostly views of workflows, runs, steps and the journal; actions go through the engine."""

from django.contrib import admin, messages
from django.utils.html import format_html

from . import engine
from .exceptions import WorkflowsError
from .models import Pool, Run, RunEvent, StepRun, Workflow


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyMixin, admin.ModelAdmin):
    def has_delete_permission(self, request, obj=None):
        return False  # rows mirror the code in flows.py; runs point at them

    list_display = ["name", "description", "version", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["name", "description", "version", "graph", "input_schema", "output_schema", "updated_at"]


class StepRunInline(ReadOnlyMixin, admin.TabularInline):
    model = StepRun
    fields = ["block", "path", "attempt", "status", "pool", "worker", "started_at", "finished_at", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


class RunEventInline(ReadOnlyMixin, admin.TabularInline):
    model = RunEvent
    fields = ["seq", "kind", "step", "data", "at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.action(description="Cancel selected runs")
def cancel_runs(modeladmin, request, queryset):
    done = 0
    for run in queryset.active():
        try:
            engine.cancel(run.pk)
            done += 1
        except WorkflowsError as exc:
            modeladmin.message_user(request, str(exc), messages.WARNING)
    modeladmin.message_user(request, f"Canceled {done} run(s).")


@admin.register(Run)
class RunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "workflow", "colored_status", "created_by", "idempotency_key", "created_at", "duration"]
    list_filter = ["status", "workflow"]
    search_fields = ["=id", "idempotency_key"]
    list_select_related = ["workflow", "created_by"]
    readonly_fields = [f.name for f in Run._meta.fields]
    inlines = [StepRunInline, RunEventInline]
    actions = [cancel_runs]
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting 100,000s of runs on every list page is slow

    @admin.display(description="status", ordering="status")
    def colored_status(self, obj):
        return format_html('<span class="status status-{}">{}</span>', obj.status, obj.status)


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "run", "path", "attempt", "status", "pool", "worker", "started_at", "finished_at"]
    list_filter = ["status", "pool"]
    search_fields = ["=run__id", "path"]
    list_select_related = ["run__workflow"]
    readonly_fields = [f.name for f in StepRun._meta.fields]
    show_full_result_count = False


@admin.register(RunEvent)
class RunEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["run", "seq", "kind", "step", "at"]
    list_filter = ["kind"]
    search_fields = ["=run__id", "step"]
    readonly_fields = [f.name for f in RunEvent._meta.fields]
    show_full_result_count = False


@admin.register(Pool)
class PoolAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "max_parallel", "busy"]

    @admin.display(description="queued + running")
    def busy(self, obj):
        from .models import STEP_HOLDS_SLOT

        return StepRun.objects.filter(pool=obj.name, status__in=STEP_HOLDS_SLOT).count()
