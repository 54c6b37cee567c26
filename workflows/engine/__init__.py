"""The engine: the only code that changes a status.

Every transition is one ``transaction.atomic()``: lock the run row, compare-and-set the step's status, record
the output, append ``RunEvent``s with the run's next seqs, decide what is ready next and create those
StepRuns. RQ jobs are enqueued (``dispatch``) and events published (``publication``) only after commit, through
ports the layers above connect at start-up. A transition whose compare-and-set finds the step no longer in the
expected state does nothing, so late, duplicate or recovered jobs are harmless.

Lock order, everywhere: pool row -> run rows by id -> step rows; a parent run before its children. A child
run tells its parent about its new status in a transaction of its own, after commit.
"""

from . import core, hooks, pool_control
from .actions import cancel, child_changed, fire_timer, restart, resume, retry, send_event, set_state
from .appends import append, record, step_result
from .core import error_of, graph_for, traceback_of
from .debounce import fire_due as fire_debounced
from .dispatch import pump
from .leases import mark_requeued, still_running
from .policy import check_commit
from .pools import admit
from .start import start
from .steps import (
    claim,
    complete,
    complete_and_take_next,
    fail,
    hand_back,
    interrupted,
    lease_expired,
    suspend,
    worker_lost,
)

core._tell_parent = child_changed  # a run's end reaches its parent (core cannot import actions: a cycle)
core._schedule_hooks = hooks.schedule  # likewise a run's end creates its completion hooks' rows

__all__ = [
    "admit",
    "append",
    "cancel",
    "check_commit",
    "child_changed",
    "claim",
    "complete",
    "complete_and_take_next",
    "error_of",
    "fail",
    "fire_debounced",
    "fire_timer",
    "graph_for",
    "hand_back",
    "interrupted",
    "lease_expired",
    "mark_requeued",
    "pool_control",
    "pump",
    "record",
    "restart",
    "resume",
    "retry",
    "send_event",
    "set_state",
    "start",
    "step_result",
    "still_running",
    "suspend",
    "traceback_of",
    "worker_lost",
]
