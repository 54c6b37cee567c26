"""Workflows of the hardening tests: any JSON in, resumed with any JSON, waiting for an event of any JSON."""

from typing import Any

from pydantic import BaseModel

from workflows import StepContext, Workflow, step


class Loose(BaseModel):
    x: float = 0.0
    extra: Any = None  # pydantic would dump NaN here as null


@step
def keep(ctx: StepContext, data: Any) -> Any:
    return data


@step
def ask_anything(ctx: StepContext, data: Any) -> Any:
    if ctx.resume_data is None:
        ctx.suspend({"question": "anything?"})
    return ctx.resume_data


anything = Workflow("anything").then(keep).commit()
loose = Workflow("loose", input=Loose).then(keep).commit()
asking = Workflow("asking").then(ask_anything).wait_for_event("go").commit()
