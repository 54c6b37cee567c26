"""Demo workflows, registered by default: a trip planner, a flaky step, a long step to cancel."""

import random
import time
from typing import Literal

from pydantic import BaseModel, Field

from workflows import Backoff, StepContext, Workflow, step


class TripRequest(BaseModel):
    city: str = Field(min_length=1, description="Where to go")
    days: int = Field(default=3, ge=1, le=30, description="Length of the stay")
    budget: Literal["shoestring", "comfort", "luxury"] = Field(default="comfort", description="Spending level")


class Destination(BaseModel):
    city: str
    days: int
    budget: str
    country: str


class Forecast(BaseModel):
    summary: str
    max_temp_c: float


class Plan(BaseModel):
    city: str
    itinerary: list[str]
    lodging: str


@step(description="Look the city up.")
def locate(ctx: StepContext, req: TripRequest) -> Destination:
    countries = {"paris": "France", "lisbon": "Portugal", "kyoto": "Japan", "lima": "Peru"}
    return Destination(country=countries.get(req.city.lower(), "Unknown"), **req.model_dump())


@step(retries=2, backoff=0.5)
def weather(ctx: StepContext, dest: Destination) -> Forecast:
    time.sleep(0.5)  # stands in for a weather API call
    temp = 12 + len(dest.city) * 1.5
    return Forecast(summary="sunny" if temp > 18 else "mild, some rain", max_temp_c=temp)


@step
def activities(ctx: StepContext, dest: Destination) -> list[str]:
    time.sleep(0.7)
    return [
        f"Day {d + 1}: explore {dest.city} ({['museums', 'food', 'walks', 'markets'][d % 4]})" for d in range(dest.days)
    ]


@step
def luxury_hotel(ctx: StepContext, data: dict) -> str:
    return "Grand Palace Hotel, suite with a view"


@step
def budget_hostel(ctx: StepContext, data: dict) -> str:
    return "Central hostel, private room"


def _is_luxury(c) -> bool:
    return c.run_input.budget == "luxury"


def _assemble(c) -> Plan:
    lodging = c.data.get("luxury_hotel") or c.data.get("budget_hostel")
    days = c.result("activities")
    forecast = c.result("weather")
    return Plan(city=c.run_input.city, itinerary=[*days, f"Weather: {forecast['summary']}"], lodging=lodging)


trip_planner = (
    Workflow(
        "trip-planner",
        input=TripRequest,
        output=Plan,
        description="Plan a trip: weather and activities in parallel, lodging by budget.",
    )
    .then(locate)
    .parallel([weather, activities])
    .branch([(_is_luxury, luxury_hotel), (lambda c: not _is_luxury(c), budget_hostel)])
    .map(_assemble, id="assemble")
    .commit()
)


class Order(BaseModel):
    order_id: str = Field(default="A-1", description="Order to charge")


@step(retries=4, backoff=Backoff(initial=0.5, factor=2, max=5))
def charge_card(ctx: StepContext, order: Order) -> dict:
    """Fails on its first two attempts, like a flaky payment API, and succeeds on the third."""
    if ctx.attempt < 3:
        raise ConnectionError(f"payment gateway timed out (attempt {ctx.attempt})")
    return {"order_id": order.order_id, "charged": True, "attempts": ctx.attempt}


flaky_payment = (
    Workflow("flaky-payment", input=Order, description="A step that succeeds on its third attempt.")
    .then(charge_card)
    .commit()
)


class Duration(BaseModel):
    seconds: int = Field(default=60, ge=1, le=3600, description="How long to work")


@step
def crunch(ctx: StepContext, data: Duration) -> dict:
    """Works for a while, reporting progress; cancel it from the run page or the admin."""
    for i in range(data.seconds):
        time.sleep(1)
        ctx.progress((i + 1) / data.seconds, f"{i + 1}/{data.seconds} s")
    return {"worked": data.seconds, "lucky": random.randint(1, 6)}


long_task = Workflow("long-task", input=Duration, description="A long step to watch and cancel.").then(crunch).commit()
