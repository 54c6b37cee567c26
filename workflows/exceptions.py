"""One error hierarchy. Each class's docstring is its default message."""

from __future__ import annotations

from typing import Any


class WorkflowsError(Exception):
    """A workflows error occurred."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class WorkflowDefinitionError(WorkflowsError):
    """The workflow definition is invalid."""


class InvalidInput(WorkflowsError, ValueError):
    """The data does not match the expected schema."""

    def __init__(self, message: str | None = None, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class InvalidTransition(WorkflowsError):
    """This action is not allowed in the run's current state."""


class UnknownWorkflow(WorkflowsError):
    """No workflow is registered under this name."""


class WorkflowVersionError(WorkflowsError):
    """The code of the version this run started with is no longer deployed."""


class NonRetryableError(Exception):
    """Raise from a step to fail it at once, without using its remaining retries."""


class OutputTooLarge(NonRetryableError):
    """The step's output is bigger than ``WORKFLOWS["MAX_OUTPUT_BYTES"]`` as JSON; the step fails, not retried."""


class StepTimeout(Exception):
    """The step ran longer than its timeout."""


class WorkerLost(Exception):
    """The worker running the step died (SIGKILL, out of memory, a lost machine, a dead work horse)."""


class WorkerShutdown(Exception):
    """The worker running the step shut down before the step finished; it runs again on another worker."""


class StepInterrupted(BaseException):
    """Raised inside a running step to stop it (cancel, timeout or its worker's shutdown).

    A BaseException so that a step's own `except Exception` cannot swallow it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Bail(BaseException):
    """Raised by ctx.bail(): end the run as succeeded with this output."""

    def __init__(self, output: Any) -> None:
        super().__init__("bail")
        self.output = output


class Suspend(BaseException):
    """Raised by ctx.suspend(): park the step until ``run.resume(...)``."""

    def __init__(self, payload: Any, label: str | None) -> None:
        super().__init__("suspend")
        self.payload = payload
        self.label = label
