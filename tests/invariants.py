"""What crash, outage and chaos tests check after the fact: the journal and the executions the steps recorded.

- gaps: a run whose journal seqs are not exactly 1..last_seq;
- double transitions: a step transition journaled more often than there are attempts it could apply to (each
  attempt is queued, claimed, succeeds, fails, is retried or canceled at most once), or a run that ended, was
  created or started more than once;
- executions: StepExecution rows (written by the steps themselves); the same attempt executed twice would mean
  two workers claimed it; extra executions of a step come only from processes that died mid-step.

Nothing here depends on pytest: ``tests/chaos.py`` uses it too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from workflows.models import RunEvent, StepRun

STEP_TRANSITIONS = ("step_queued", "step_running", "step_succeeded", "step_failed", "step_retrying", "step_canceled")
RUN_ONCE = ("run_created", "run_started")
RUN_ENDS = ("run_succeeded", "run_failed", "run_canceled")


@dataclass
class Report:
    gaps: list[int] = field(default_factory=list)  # run ids
    doubles: list[tuple] = field(default_factory=list)  # (run id, kind, path, attempt, count, allowed)
    same_attempt_twice: list[tuple] = field(default_factory=list)  # (run id, path, attempt, executions)
    executions: int = 0
    planned_failures: int = 0
    paths: int = 0  # distinct (run, path) that executed at least once

    @property
    def extra_executions(self) -> int:
        """Executions beyond one per step path, not counting the planned failures."""
        return self.executions - self.planned_failures - self.paths

    def problems(self) -> list[str]:
        out = []
        if self.gaps:
            out.append(f"journal gaps in runs {self.gaps[:10]}")
        if self.doubles:
            out.append(f"transitions applied twice: {self.doubles[:10]}")
        if self.same_attempt_twice:
            out.append(f"attempts executed twice: {self.same_attempt_twice[:10]}")
        return out


def check(run_ids: Iterable[int]) -> Report:
    run_ids = list(run_ids)
    report = Report()
    for start in range(0, len(run_ids), 500):
        _check_batch(run_ids[start : start + 500], report)
    return report


def _check_batch(run_ids: list[int], report: Report) -> None:
    from tests.testapp.models import StepExecution

    seqs: dict[int, list[int]] = {}
    last: dict[int, int] = {}
    counts: Counter = Counter()
    for run_id, seq, kind, step, data, last_seq in (
        RunEvent.objects.filter(run_id__in=run_ids)
        .order_by("run_id", "seq")
        .values_list("run_id", "seq", "kind", "step", "data", "run__last_seq")
    ):
        seqs.setdefault(run_id, []).append(seq)
        last[run_id] = last_seq
        if kind in STEP_TRANSITIONS:
            counts[(run_id, kind, step, (data or {}).get("attempt"))] += 1
        elif kind in RUN_ONCE:
            counts[(run_id, kind, "", None)] += 1
        elif kind in RUN_ENDS:
            counts[(run_id, "run_ended", "", None)] += 1
    for run_id in run_ids:
        if seqs.get(run_id, []) != list(range(1, last.get(run_id, 0) + 1)):
            report.gaps.append(run_id)
    attempts = Counter(StepRun.objects.filter(run_id__in=run_ids).values_list("run_id", "path", "attempt"))
    rows = Counter((run_id, path) for run_id, path, _ in attempts.elements())
    for (run_id, kind, step, attempt), n in counts.items():
        if not step:
            allowed = 1
        elif attempt is None:  # an event that names no attempt (canceled with its run): once per row at most
            allowed = rows.get((run_id, step), 0)
        else:
            allowed = attempts.get((run_id, step, attempt), 0)
        if n > allowed:
            report.doubles.append((run_id, kind, step, attempt, n, allowed))
    executions = Counter()
    for run_id, path, attempt, planned in StepExecution.objects.filter(run_id__in=run_ids).values_list(
        "run_id", "path", "attempt", "planned_failure"
    ):
        executions[(run_id, path, attempt)] += 1
        report.executions += 1
        report.planned_failures += planned
    report.paths += len({(run_id, path) for run_id, path, _ in executions})
    report.same_attempt_twice += [(*key, n) for key, n in executions.items() if n > 1]


def executions(run_id: int) -> dict[str, list[int]]:
    """The attempts each step path of the run executed, in order."""
    from tests.testapp.models import StepExecution

    out: dict[str, list[int]] = {}
    for path, attempt in StepExecution.objects.filter(run_id=run_id).order_by("id").values_list("path", "attempt"):
        out.setdefault(path, []).append(attempt)
    return out


def row_counts() -> tuple[int, ...]:
    """Runs, step rows, journal events and inbound events: unchanged by a rejected input."""
    from workflows.models import InboundEvent, Run

    return Run.objects.count(), StepRun.objects.count(), RunEvent.objects.count(), InboundEvent.objects.count()
