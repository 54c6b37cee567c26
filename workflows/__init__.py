"""Durable, live workflows for Django. The public API."""

from .backoff import Backoff
from .context import Context, StepContext
from .dsl import Step, Workflow, step
from .exceptions import (
    InvalidInput,
    InvalidTransition,
    NonRetryableError,
    StepTimeout,
    UnknownWorkflow,
    WorkerLost,
    WorkflowDefinitionError,
    WorkflowsError,
    WorkflowVersionError,
)

__all__ = [
    "Backoff",
    "Context",
    "InvalidInput",
    "InvalidTransition",
    "NonRetryableError",
    "Step",
    "StepContext",
    "StepTimeout",
    "UnknownWorkflow",
    "WorkerLost",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowVersionError",
    "WorkflowsError",
    "step",
]
