"""``workflows schedules``: a workflow's cron schedules, and pausing or resuming one (staff or
``workflows.change_schedule``; the API's 403 otherwise).

    workflows schedules list nightly-report
    workflows schedules pause 7 | resume 7
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from .client import Client


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("schedules", help="a workflow's schedules; pause or resume one", parents=[common])
    actions = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    ls = actions.add_parser("list", help="a workflow's schedules with their next due times", parents=[common])
    ls.add_argument("workflow", help="the workflow's name")
    for action in ("pause", "resume"):
        a = actions.add_parser(action, help=f"{action} a schedule", parents=[common])
        a.add_argument("schedule", type=int, help="the schedule's id (from `schedules list`)")


def run(args: argparse.Namespace, client: Client) -> tuple[Any, Any]:
    """(the API's answer, the table that shows it)."""
    if args.action == "list":
        return client.get(f"workflows/{args.workflow}/schedules/"), _table
    return client.post(f"schedules/{args.schedule}/{args.action}/"), lambda s: _table({"schedules": [s]})


def _table(answer: dict[str, Any]) -> Table:
    t = Table(title="schedules")
    for col in ("id", "name", "cron", "timezone", "state", "next due", "last fire"):
        t.add_column(col)
    for s in answer["schedules"]:
        last = s["last_fires"][0] if s["last_fires"] else None
        t.add_row(
            str(s["id"]),
            s["name"],
            s["cron"],
            s["timezone"],
            ("paused" if s["paused"] else "active") + ("" if s["editable"] else " (code)"),
            s["next_times"][0] if s["next_times"] else "",
            f"{last['due']}: {last['outcome']}" if last else "",
        )
    return t
