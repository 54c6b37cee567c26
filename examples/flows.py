"""Demo workflows, registered by default: a trip planner, a flaky step, a long step to cancel."""

import random
import time
from typing import Literal

from pydantic import BaseModel, Field

from workflows import Backoff, Schedule, StepContext, Workflow, step


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


# --- human in the loop: a step that suspends until someone decides on the run page --------------------------


class ExpenseClaim(BaseModel):
    employee: str = Field(min_length=1, description="Who is claiming")
    amount: float = Field(gt=0, le=10_000, description="Amount in euros")
    category: Literal["travel", "equipment", "training", "other"] = Field(default="travel", description="Kind of cost")
    receipts: list[str] = Field(default_factory=list, description="Receipt numbers, one per item")
    urgent: bool = Field(default=False, description="Pay out today if approved")


class CheckedClaim(BaseModel):
    claim: ExpenseClaim
    flags: list[str]


class Decision(BaseModel):
    approved: bool = Field(description="The manager's decision")
    comment: str = Field(default="", max_length=500, description="Shown to the employee")


class Outcome(BaseModel):
    employee: str
    amount: float
    approved: bool
    comment: str


@step(description="Check the claim against the expense policy.")
def check_policy(ctx: StepContext, claim: ExpenseClaim) -> CheckedClaim:
    flags = []
    if claim.amount > 1000:
        flags.append("over 1,000 €: needs a manager")
    if not claim.receipts:
        flags.append("no receipt")
    ctx.log(f"{len(flags)} policy flag(s) for {claim.employee}")
    return CheckedClaim(claim=claim, flags=flags)


@step(resume=Decision, description="A manager approves or rejects the claim from the run page.")
def manager_approval(ctx: StepContext, checked: CheckedClaim) -> Outcome:
    claim = checked.claim
    if ctx.resume_data is None:
        ctx.suspend(
            {
                "question": f"Approve {claim.amount:.2f} € of {claim.category} for {claim.employee}?",
                "flags": ", ".join(checked.flags) or "none",
            },
            label="manager",
        )
    decision = ctx.resume_data
    ctx.log(f"{'approved' if decision.approved else 'rejected'} by the manager")
    return Outcome(employee=claim.employee, amount=claim.amount, approved=decision.approved, comment=decision.comment)


@step(description="Record the payment, or the rejection.")
def settle(ctx: StepContext, outcome: Outcome) -> dict:
    time.sleep(0.3)  # stands in for the payroll system
    return {"paid": outcome.amount if outcome.approved else 0, "employee": outcome.employee, "note": outcome.comment}


expense_approval = (
    Workflow(
        "expense-approval",
        input=ExpenseClaim,
        description="Human in the loop: the run waits until a manager approves or rejects the claim.",
    )
    .then(check_policy)
    .then(manager_approval)
    .then(settle)
    .commit()
)


# --- the whole DSL at once: foreach with progress, a loop, a nested workflow with a timer ---------------------


class DigestRequest(BaseModel):
    topics: list[str] = Field(
        default=["durable execution", "event sourcing", "work queues", "retries", "backpressure", "idempotency"],
        description="One article is researched per topic",
    )
    quality: float = Field(default=0.8, ge=0.1, le=1, description="Drafts are revised until they reach this score")


class Article(BaseModel):
    topic: str
    words: int


class Draft(BaseModel):
    text: str
    score: float


@step(retries=2, backoff=0.5, description="Research one topic (a stand-in for a web search and an LLM call).")
def research(ctx: StepContext, topic: str) -> Article:
    time.sleep(0.4 + random.random() * 0.6)
    ctx.log(f"read 3 sources about {topic}", sources=3)  # fields: stored, shown in the run page's history
    return Article(topic=topic, words=200 + 37 * len(topic))


@step(description="Write a first draft from the articles.")
def write_draft(ctx: StepContext, articles: list[Article]) -> Draft:
    time.sleep(0.3)
    return Draft(text=" / ".join(a.topic for a in articles), score=0.35)


@step(description="Revise the draft; each iteration improves its score.")
def revise(ctx: StepContext, draft: Draft) -> Draft:
    time.sleep(0.3)
    score = min(1.0, round(draft.score + 0.2, 2))
    level = "info" if score >= ctx.run_input.quality else "warning"  # not good enough yet: the history can filter
    ctx.log(f"revised: score {draft.score} -> {score}", level=level, score=score)
    return Draft(text=draft.text, score=score)


@step(description="Lay the digest out for email.")
def format_email(ctx: StepContext, draft: Draft) -> dict:
    return {"subject": "Your weekly digest", "body": draft.text, "score": draft.score}


@step(description="Send it.")
def send_email(ctx: StepContext, email: dict) -> dict:
    ctx.log(f"sent {email['subject']!r}")
    return {**email, "sent": True}


publish_digest = (
    Workflow(
        "publish-digest",
        description="Format and send a digest, after a short durable pause.",
        schedules=[  # every Monday at 07:00 in Lisbon: started by the recovery loop (`manage.py up` runs one)
            Schedule(
                "0 7 * * 1", input={"text": "This week's news", "score": 1.0}, timezone="Europe/Lisbon", name="weekly"
            )
        ],
    )
    .then(format_email)
    .sleep(1)
    .then(send_email)
    .commit()
)

research_digest = (
    Workflow(
        "research-digest",
        input=DigestRequest,
        description="Research topics in parallel (foreach), revise a draft until it is good (loop), then publish it "
        "with a nested workflow.",
    )
    .map(lambda c: c.data.topics, id="topics")
    .foreach(research, concurrency=3)
    .then(write_draft)
    .dountil(revise, lambda c: c.data.score >= c.run_input.quality, max_iterations=10)
    .then(publish_digest)
    .commit()
)


from . import support_desk  # noqa: E402,F401  (the agent demo: registered with the others)
