"""Cron schedules: ``Workflow("report", schedules=[Schedule("0 3 * * *", timezone="Europe/Lisbon")])``.

Cron expressions are parsed and evaluated by ``cronsim`` (never by hand), in the schedule's own IANA time zone
(``zoneinfo``). Daylight-saving changes are handled like Debian's cron: a time that spring-forward skips fires right
after the jump (``30 1 * * *`` in Lisbon fires at 02:00 that day), and a time that fall-back repeats fires once.
The same functions check and evaluate the schedules created at runtime (stored in the database).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ..exceptions import WorkflowDefinitionError

OVERLAP = ("skip", "allow", "cancel_previous")  # a due time while an earlier run of the schedule is still active
CATCHUP = ("none", "latest", "all")  # due times missed while nothing ran (downtime, a long tick)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
CRON_MAX = 120


def check_cron(expr: Any) -> str:
    """The expression, or WorkflowDefinitionError saying what is wrong with it."""
    if not isinstance(expr, str) or not expr.strip() or len(expr) > CRON_MAX:
        raise WorkflowDefinitionError(f"Invalid cron expression {expr!r}: a string of 5 fields, like '0 3 * * *'")
    expr = " ".join(expr.split())
    if len(expr.split(" ")) != 5:  # cronsim also reads a 6th (seconds) field: keep schedules to minutes
        raise WorkflowDefinitionError(
            f"Invalid cron expression {expr!r}: it needs 5 fields (minute hour day month weekday)"
        )
    try:
        CronSim(expr, datetime(2000, 1, 1))
    except (CronSimError, ValueError) as exc:
        raise WorkflowDefinitionError(f"Invalid cron expression {expr!r}: {exc}") from None
    return expr


def zone(name: Any) -> ZoneInfo:
    """The IANA time zone, or WorkflowDefinitionError."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise WorkflowDefinitionError(f"Unknown time zone {name!r}: give an IANA name like 'Europe/Lisbon' or 'UTC'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise WorkflowDefinitionError(f"Unknown time zone {name!r}: give an IANA name like 'Europe/Lisbon'") from None


def check_choice(value: Any, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise WorkflowDefinitionError(f"Invalid {what} {value!r}: one of {', '.join(choices)}")
    return value


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return moment.astimezone(UTC)


def times_after(cron: str, tz: str, after: datetime, n: int = 1) -> list[datetime]:
    """The next ``n`` fire times strictly after ``after``, as UTC datetimes."""
    it = CronSim(cron, _utc(after).astimezone(zone(tz)))
    return [_utc(next(it)) for _ in range(n)]


def times_between(cron: str, tz: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """At most ``limit`` fire times in ``[start, end]``, the latest ones, oldest first (UTC). Walks backwards from
    ``end``, so a long downtime of a per-minute schedule costs ``limit`` steps, not one per missed minute."""
    start, end = _utc(start), _utc(end)
    if start > end or limit <= 0:
        return []
    found: list[datetime] = []
    # cronsim walks back from the minute before its start: begin just after ``end`` so that ``end`` itself counts
    for moment in CronSim(cron, end.astimezone(zone(tz)).replace(second=59, microsecond=0), reverse=True):
        moment = _utc(moment)
        if moment > end:
            continue
        if moment < start or len(found) >= limit:
            break
        found.append(moment)
    return found[::-1]


@dataclass(frozen=True)
class Schedule:
    """Start the workflow on a cron schedule with ``input``.

    ``overlap``: ``skip`` (the default: a due time while the schedule's previous run is still active is skipped and
    recorded), ``allow`` (start anyway) or ``cancel_previous`` (cancel the active runs, then start).
    ``catchup`` after downtime: ``none`` (skip the missed due times), ``latest`` (the default: fire the latest
    missed one) or ``all`` (each missed one, at most ``SCHEDULE_CATCHUP_MAX``, the latest ones).
    ``name`` identifies it among the workflow's schedules (default: derived from cron, zone and input), so that
    a changed definition updates the stored schedule instead of replacing it.
    """

    cron: str
    input: Any = None
    timezone: str = "UTC"
    overlap: str = "skip"
    catchup: str = "latest"
    name: str | None = None
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cron", check_cron(self.cron))
        zone(self.timezone)
        check_choice(self.overlap, OVERLAP, "overlap")
        check_choice(self.catchup, CATCHUP, "catchup")
        if self.name is not None and not (isinstance(self.name, str) and NAME_RE.match(self.name)):
            raise WorkflowDefinitionError(f"Invalid schedule name {self.name!r}: letters, digits, '_', '.', '-'")
        try:
            dumped = json.dumps(self.input, sort_keys=True)
        except (TypeError, ValueError):
            raise WorkflowDefinitionError(f"Schedule {self.cron!r}: its input must be JSON") from None
        derived = hashlib.sha256(f"{self.cron}|{self.timezone}|{dumped}".encode()).hexdigest()[:12]
        object.__setattr__(self, "key", self.name or f"cron-{derived}")

    def next_times(self, after: datetime, n: int = 5) -> list[datetime]:
        """The next ``n`` fire times after ``after`` (UTC)."""
        return times_after(self.cron, self.timezone, after, n)


def check_schedules(workflow: str, schedules: Any, validate_input: Any) -> tuple[Schedule, ...]:
    """A workflow's ``schedules=``: a list of Schedules with distinct names whose input fits the workflow."""
    if schedules is None:
        return ()
    if isinstance(schedules, Schedule):
        schedules = [schedules]
    if isinstance(schedules, str | bytes) or not isinstance(schedules, list | tuple):
        raise WorkflowDefinitionError(f"Workflow {workflow!r}: schedules= takes a list of Schedule")
    keys: set[str] = set()
    for s in schedules:
        if not isinstance(s, Schedule):
            raise WorkflowDefinitionError(f"Workflow {workflow!r}: schedules= takes Schedule objects, got {s!r}")
        if s.key in keys:
            raise WorkflowDefinitionError(f"Workflow {workflow!r}: two schedules are named {s.key!r}: name one")
        keys.add(s.key)
        try:
            validate_input(s.input, f"schedule {s.key!r} input")
        except Exception as exc:
            raise WorkflowDefinitionError(f"Workflow {workflow!r}: {exc}") from None
    return tuple(schedules)
