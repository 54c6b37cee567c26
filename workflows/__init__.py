"""Durable, live workflows for Django. The public API."""

from .definition.backoff import Backoff
from .definition.context import Context, StepContext
from .definition.dsl import Workflow
from .definition.schedule import Schedule
from .definition.step import Step, step
from .exceptions import (
    InvalidInput,
    InvalidTransition,
    NonRetryableError,
    OutputTooLarge,
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
    "Schedule",
    "OutputTooLarge",
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
