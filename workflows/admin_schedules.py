"""Admin for schedules: runtime ones are created, edited, paused and deleted here (through the same service
functions as the dashboard and the API, so that the same checks hold); code-defined ones may only be paused."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .engine import schedule_admin
from .exceptions import InvalidInput, UnknownWorkflow
from .store.scheduling import Schedule, ScheduleFire

EDITABLE = ["name", "cron", "timezone", "input", "overlap", "catchup", "paused"]


class ScheduleAdminForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ["workflow", *EDITABLE]

    def clean(self):
        data = super().clean()
        if self.instance.pk and self.instance.from_code:
            return data  # only "paused" is editable: nothing to check
        workflow = data.get("workflow") or getattr(self.instance, "workflow", None)
        if workflow is None:
            return data
        try:
            schedule_admin.clean(workflow.name, {f: data[f] for f in EDITABLE if f in data})
        except UnknownWorkflow as exc:
            self.add_error("workflow", str(exc))
        except InvalidInput as exc:
            for e in exc.errors or [{"loc": [], "msg": str(exc)}]:
                field = e["loc"][0] if e.get("loc") and e["loc"][0] in self.fields else None
                self.add_error(field, e["msg"])
        return data


class ScheduleFireInline(admin.TabularInline):
    model = ScheduleFire
    fields = ["due_at", "outcome", "run", "detail", "fired_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-due_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleAdminForm
    list_display = ["name", "workflow", "cron", "timezone", "overlap", "catchup", "paused", "source", "next_due"]
    list_filter = ["paused", "source", "workflow"]
    search_fields = ["name", "workflow__name", "cron"]
    actions = ["pause", "resume"]
    inlines = [ScheduleFireInline]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["source", "next_due", "last_due", "created_by", "dashboard"]
        if obj is not None and obj.from_code:
            return ["workflow", *[f for f in EDITABLE if f != "paused"], *fixed]
        return ["workflow", *fixed] if obj is not None else fixed

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.from_code)

    def delete_queryset(self, request, queryset):
        queryset.exclude(source=Schedule.Source.CODE).delete()  # code-defined ones stay: remove them in code

    def save_model(self, request, obj, form, change):
        values = {f: form.cleaned_data[f] for f in EDITABLE if f in form.cleaned_data}
        if change:
            changed = {f: values[f] for f in form.changed_data if f in values}
            saved = schedule_admin.update(Schedule.objects.get(pk=obj.pk), changed)
        else:
            saved = schedule_admin.create(obj.workflow.name, values, user=request.user)
        obj.pk, obj.next_due = saved.pk, saved.next_due

    @admin.action(description="Pause the selected schedules")
    def pause(self, request, queryset):
        for s in queryset.filter(paused=False):
            schedule_admin.set_paused(s, True)

    @admin.action(description="Resume the selected schedules")
    def resume(self, request, queryset):
        for s in queryset.filter(paused=True):
            schedule_admin.set_paused(s, False)

    def view_on_site(self, obj):
        return reverse("workflows:schedule", args=[obj.pk])

    @admin.display(description="dashboard")
    def dashboard(self, obj):
        return format_html('<a href="{}">open ↗</a>', reverse("workflows:schedule", args=[obj.pk])) if obj.pk else "—"
