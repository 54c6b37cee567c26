"""Which retry budget a failed attempt spends, and whether that budget has any left.

A step's own ``retries`` pay for its own errors only. Infrastructure pays for itself, on budgets of its own on
top of the step's retries, so that ``retries=0`` means "do not retry my errors", not "fail on a deploy":

- ``WorkerLost`` (its worker died: SIGKILL, out of memory, a lost machine, a dead work horse):
  ``WORKER_LOST_RETRIES`` more attempts (3). A step that kills its worker every time still fails after them: a
  poison pill cannot loop.
- ``WorkerShutdown`` (its worker shut down, and the step outlasted the grace period): ``SHUTDOWN_RETRIES`` more
  attempts (10). Deploys are more frequent than crashes and never the step's fault, hence a budget of their own;
  it is bounded too, since a step can get its worker stopped (a Kubernetes eviction for the memory it uses).

Each budget is counted from the error types of the earlier attempts of the same step path (its StepRun rows):
the count survives any process, and needs no column of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import conf
from ..store.models import StepRun

OWN = "retries"
WORKER_LOST = "WorkerLost"
WORKER_SHUTDOWN = "WorkerShutdown"
INFRASTRUCTURE = {WORKER_LOST: "WORKER_LOST_RETRIES", WORKER_SHUTDOWN: "SHUTDOWN_RETRIES"}  # error type -> setting


@dataclass(frozen=True)
class Charge:
    """A failed attempt charged to a budget: ``spent`` of its attempts so far (this one included) of ``allowed``."""

    budget: str  # OWN, or an INFRASTRUCTURE setting's name
    spent: int
    allowed: int

    @property
    def retry(self) -> bool:
        return self.spent <= self.allowed

    @property
    def infrastructure(self) -> bool:
        return self.budget != OWN


def charge(error_type: str | None, earlier: Iterable[str | None], retries: int, limits: Mapping[str, int]) -> Charge:
    """The budget an attempt failing with ``error_type`` spends, given the error types of the step's ``earlier``
    attempts, its own ``retries`` and the infrastructure budgets ``limits`` (setting name -> retries)."""
    earlier = list(earlier)
    budget = INFRASTRUCTURE.get(error_type or "")
    if budget is not None:
        return Charge(budget, 1 + earlier.count(error_type), limits[budget])
    return Charge(OWN, 1 + sum(t not in INFRASTRUCTURE for t in earlier), retries)


def limits() -> dict[str, int]:
    return {name: int(conf.get(name)) for name in INFRASTRUCTURE.values()}


def earlier_error_types(sr: StepRun) -> list[str | None]:
    """The error types of the attempts of ``sr``'s step path before ``sr``, oldest first."""
    rows = StepRun.objects.filter(run_id=sr.run_id, block=sr.block, path=sr.path, attempt__lt=sr.attempt)
    return [(error or {}).get("type") for error in rows.order_by("attempt").values_list("error", flat=True)]


def charge_attempt(sr: StepRun, error_type: str | None, retries: int) -> Charge:
    """``charge`` for the failed attempt ``sr``: its earlier attempts read from the database."""
    earlier = earlier_error_types(sr) if sr.attempt > 1 else []
    return charge(error_type, earlier, retries, limits())
