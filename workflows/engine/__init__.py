"""The engine: the only code that changes a status.

Every transition is one ``transaction.atomic()``: lock the run row, compare-and-set the step's status, record
the output, append ``RunEvent``s with the run's next seqs, decide what is ready next and create those
StepRuns. RQ jobs are enqueued and events published only after commit. A transition whose compare-and-set
finds the step no longer in the expected state does nothing, so late, duplicate or recovered jobs are harmless.

Lock order, everywhere: pool row -> run rows by id -> step rows; a parent run before its children. A child
run tells its parent about its new status in a transaction of its own, after commit.
"""

from .actions import cancel, child_changed, fire_timer, restart, resume, retry, send_event, set_state
from .core import error_of, graph_for, traceback_of
from .pools import admit
from .start import start
from .steps import claim, complete, complete_and_take_next, fail, interrupted, lease_expired, suspend

__all__ = [
    "admit",
    "cancel",
    "child_changed",
    "claim",
    "complete",
    "complete_and_take_next",
    "error_of",
    "fail",
    "fire_timer",
    "graph_for",
    "interrupted",
    "lease_expired",
    "restart",
    "resume",
    "retry",
    "send_event",
    "set_state",
    "start",
    "suspend",
    "traceback_of",
]
