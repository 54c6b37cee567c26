"""Read-side queries shared by the dashboard pages and the JSON API, one module per concern:

- ``lists``: the runs lists' filters, keyset pagination with a capped count, a run's summary row;
- ``stats``: per-workflow statistics, durations and runs per day (the home and workflow pages' numbers and charts);
- ``run``: one run in detail (its graph, step rows, node states, related runs, resume and event targets);
- ``catalog``: the workflows the dashboard shows.

Callers use ``from workflows.web import queries`` and ``queries.<name>``: every public name is re-exported here.
Every query of runs starts from ``Run.objects.visible_to``.
"""

from .catalog import WorkflowInfo, all_workflow_infos, form_schema, workflow_info
from .lists import (
    COUNT_CAP,
    LIST_DEFER,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    Page,
    RunFilters,
    attach_tokens,
    capped_count,
    decode_cursor,
    encode_cursor,
    paginate,
    run_progress,
    run_summary,
)
from .run import (
    FOREACH_PRECEDENCE,
    STEP_FIELDS,
    graph_of_run,
    node_states,
    pending_events,
    related_runs,
    restart_choices,
    resume_schema,
    resume_targets,
    step_rows,
)
from .stats import daily_counts, duration_series, empty_stats, workflow_stats

__all__ = [
    "COUNT_CAP",
    "FOREACH_PRECEDENCE",
    "LIST_DEFER",
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "STEP_FIELDS",
    "Page",
    "RunFilters",
    "WorkflowInfo",
    "all_workflow_infos",
    "capped_count",
    "daily_counts",
    "form_schema",
    "decode_cursor",
    "duration_series",
    "empty_stats",
    "encode_cursor",
    "graph_of_run",
    "node_states",
    "paginate",
    "pending_events",
    "related_runs",
    "restart_choices",
    "resume_schema",
    "resume_targets",
    "run_progress",
    "attach_tokens",
    "run_summary",
    "step_rows",
    "workflow_info",
    "workflow_stats",
]
