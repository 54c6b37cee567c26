"""The dashboard's URLs, relative to wherever a project includes them (a contract: ``''``, ``workflows/<name>/``,
``runs/``, ``runs/<id>/``, and the JSON API under ``api/``). Pages and scripts reach them by name, never by path."""

from django.urls import path, re_path

from .web import api, pools_api, pools_views, views

app_name = "workflows"
urlpatterns = [
    path("", views.home, name="home"),
    path("workflows/<str:name>/", views.workflow_detail, name="workflow"),
    path("runs/", views.runs_list, name="runs"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/<str:action>/", views.run_action, name="run-action"),  # POST: cancel, resume…
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
    path("api/runs/<int:run_id>/cancel/", api.run_cancel, name="api-run-cancel"),
    path("api/runs/<int:run_id>/resume/", api.run_resume, name="api-run-resume"),
    path("api/runs/<int:run_id>/send-event/", api.run_send_event, name="api-run-send-event"),
    path("api/runs/<int:run_id>/retry/", api.run_retry, name="api-run-retry"),
    path("api/runs/<int:run_id>/restart/", api.run_restart, name="api-run-restart"),
    re_path(r"^api/", api.not_found),  # anything else under /api/: a JSON 404, not an HTML page
]
