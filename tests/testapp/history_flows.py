"""Workflows of the run page's event history tests: log lines with levels and fields, a workflow without input=."""

from __future__ import annotations

from pydantic import BaseModel

from workflows import StepContext, Workflow, step


class City(BaseModel):
    city: str
    days: int = 2


@step
def noisy(ctx: StepContext, data: dict) -> dict:
    ctx.log("starting", rows=3)
    ctx.log("slow source", level="warning", source="api", seconds=2.5)
    ctx.log("details", level="debug")
    return data


@step
def plan(ctx: StepContext, where: City) -> dict:
    return {"city": where.city, "days": where.days}


noisy_flow = Workflow("history-noisy").then(noisy).commit()
untyped_plan = Workflow("history-untyped").then(plan).sleep(0.1).commit()  # no input=: the form comes from `plan`
