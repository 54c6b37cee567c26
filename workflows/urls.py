"""The dashboard's URLs, relative to wherever a project includes them (a contract: ``''``, ``workflows/<name>/``,
``runs/``, ``runs/<id>/``, and the JSON API under ``api/``). Pages and scripts reach them by name, never by path."""

from django.urls import include, path

from .web import (
    api,
    bulk,
    errors,
    health,
    history,
    metrics,
    operations_views,
    pools_views,
    run_actions,
    schedule_views,
    tokens,
    views,
)

app_name = "workflows"
urlpatterns = [
    path("", views.home, name="home"),
    path("workflows/<str:name>/", views.workflow_detail, name="workflow"),
    path("runs/", views.runs_list, name="runs"),
    path("runs/bulk/", bulk.bulk_action, name="runs-bulk"),  # POST: cancel or retry the selected runs
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/history/", history.run_history, name="run-history"),  # GET: the journal, a page at a time
    path("runs/<int:run_id>/<str:action>/", run_actions.run_action, name="run-action"),  # POST: cancel, resume…
    path("workflows/<str:name>/schedules/new/", schedule_views.schedule_new, name="schedule-new"),
    path("schedules/<int:schedule_id>/", schedule_views.schedule_detail, name="schedule"),
    path("schedules/<int:schedule_id>/<str:action>/", schedule_views.schedule_action, name="schedule-action"),
    path("metrics", metrics.scrape, name="metrics"),  # Prometheus, opt-in (WORKFLOWS["METRICS"])
    path("health/live", health.live, name="health-live"),  # no login: 200 while the process answers
    path("health/ready", health.ready, name="health-ready"),  # no login: 200, or 503 (database, Redis, migrations)
    path("operations/", operations_views.operations_page, name="operations"),  # pools, queues, workers, loops…
    path("pools/", pools_views.pools, name="pools"),  # pools: limits, pause, what waits
    path("tokens/", tokens.tokens_page, name="tokens"),  # API tokens: create, list, revoke
    path("tokens/<int:token_id>/revoke/", tokens.token_revoke, name="token-revoke"),
    path("api/", include(api.urlpatterns())),  # JSON API (web/api): names api, api-runs, api-run…
]
urlpatterns = errors.styled_pages(urlpatterns)  # the app's pages answer 403/404 in its own layout
