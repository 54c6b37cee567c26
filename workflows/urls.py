"""The dashboard's URLs, relative to wherever a project includes them (a contract: ``''``, ``workflows/<name>/``,
``runs/``, ``runs/<id>/``, and the JSON API under ``api/``). Pages and scripts reach them by name, never by path."""

from django.urls import path, re_path

from .web import api, metrics, pools_api, pools_views, schedule_views, schedules, views

app_name = "workflows"
urlpatterns = [
    path("", views.home, name="home"),
    path("workflows/<str:name>/", views.workflow_detail, name="workflow"),
    path("runs/", views.runs_list, name="runs"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/<str:action>/", views.run_action, name="run-action"),  # POST: cancel, resume…
    path("workflows/<str:name>/schedules/new/", schedule_views.schedule_new, name="schedule-new"),
    path("schedules/<int:schedule_id>/", schedule_views.schedule_detail, name="schedule"),
    path("schedules/<int:schedule_id>/<str:action>/", schedule_views.schedule_action, name="schedule-action"),
    path("metrics", metrics.scrape, name="metrics"),  # Prometheus, opt-in (WORKFLOWS["METRICS"])
    # JSON API
    path("pools/", pools_views.pools, name="pools"),
    path("api/", api.index, name="api"),
    path("api/pools/", pools_api.pools, name="api-pools"),
    path("api/pools/<str:name>/", pools_api.pool, name="api-pool"),
    path("api/workflows/", api.workflows, name="api-workflows"),
    path("api/workflows/<str:name>/", api.workflow, name="api-workflow"),
    path("api/workflows/<str:name>/runs/", api.workflow_runs, name="api-workflow-runs"),
    path("api/runs/", api.runs, name="api-runs"),
    path("api/runs/<int:run_id>/", api.run, name="api-run"),
    path("api/runs/<int:run_id>/events/", api.run_events, name="api-run-events"),
    path("api/runs/<int:run_id>/steps/<path:path>/", api.run_step, name="api-run-step"),  # paths may hold "/"
    path("api/runs/<int:run_id>/values/<path:where>", api.run_value, name="api-run-value"),  # large values
    path("api/runs/<int:run_id>/cancel/", api.run_cancel, name="api-run-cancel"),
    path("api/runs/<int:run_id>/resume/", api.run_resume, name="api-run-resume"),
    path("api/runs/<int:run_id>/send-event/", api.run_send_event, name="api-run-send-event"),
    path("api/runs/<int:run_id>/retry/", api.run_retry, name="api-run-retry"),
    path("api/runs/<int:run_id>/restart/", api.run_restart, name="api-run-restart"),
    path("api/workflows/<str:name>/schedules/", schedules.workflow_schedules, name="api-workflow-schedules"),
    path("api/schedules/<int:schedule_id>/", schedules.schedule, name="api-schedule"),
    path("api/schedules/<int:schedule_id>/pause/", schedules.schedule_pause, name="api-schedule-pause"),
    path("api/schedules/<int:schedule_id>/resume/", schedules.schedule_resume, name="api-schedule-resume"),
    re_path(r"^api/", api.not_found),  # anything else under /api/: a JSON 404, not an HTML page
]
