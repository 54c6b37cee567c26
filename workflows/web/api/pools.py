"""``/api/pools/``: each pool's limits and what they are doing (``engine.pool_control.PoolState``), and changing
them at runtime: ``POST /api/pools/<name>/`` ``{"max_parallel": 4}`` (``null``: back to the settings' value),
``{"paused": true}`` or both, applied at once in every process. Changing a pool takes staff or
``workflows.change_pool`` (else ``403``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Router
from pydantic import BaseModel, StrictBool, StrictInt

from ... import conf
from ...engine import pool_control
from .. import pools, services
from . import schemas as s

router = Router(tags=["pools"])


class PoolOut(BaseModel):
    name: str
    queue: str
    running: int = Field(description="queued and running: the slots held")
    limit: int = Field(description="what admission uses now")
    default_limit: int = Field(description="the settings' max_parallel")
    paused: bool
    waiting: int = Field(description="pending and due: waiting for a slot, a key's slot or priority")
    delayed: int = Field(description="pending with a due time ahead: a retry's backoff or a rate limit")
    rate: str | None
    started_in_window: int | None = Field(description="steps started in the rate's window")
    tokens: str | None
    tokens_in_window: int | None = Field(description="agent tokens used in the budget's window")
    key_limit: int | None
    key_rate: str | None
    url: str


class PoolListOut(BaseModel):
    results: list[PoolOut]


class PoolChangeIn(s.Strict):
    """Send either or both."""

    max_parallel: StrictInt | None = Field(None, description="the pool's limit from now on; null: the settings'")
    paused: StrictBool = Field(None, description="true: admit nothing from the pool; its running steps finish")


def pool_json(state: pool_control.PoolState) -> dict[str, Any]:
    return {**state.as_json(), "url": reverse("workflows:api-pool", args=[state.name])}


def _known(name: str) -> str:
    if name not in conf.pools():
        raise services.ServiceError(404, f"No pool named {name!r}")
    return name


@router.get("/pools/", response={200: PoolListOut, **s.ERRORS}, url_name="api-pools")
def pool_list(request: HttpRequest):
    """Every pool with its limits and usage."""
    return {"results": [pool_json(state) for state in pool_control.states()]}


@router.get("/pools/{name}/", response={200: PoolOut, **s.ERRORS}, url_name="api-pool")
def pool(request: HttpRequest, name: str):
    return pool_json(pool_control.state(_known(name)))


@router.post("/pools/{name}/", response={200: PoolOut, **s.ERRORS})
def pool_change(request: HttpRequest, name: str, payload: PoolChangeIn):
    """Change the pool's limit and/or pause it: ``400`` for a bad value (nothing changes)."""
    name = _known(name)
    if not pools.can_control(request.user):
        raise services.ServiceError(403, "Changing a pool needs staff status or the workflows.change_pool permission")
    data = payload.model_dump(exclude_unset=True)
    if not data:
        raise services.ServiceError(400, "Send max_parallel (an integer, or null) and/or paused (true or false)")
    if "max_parallel" in data:
        pool_control.set_limit(name, data["max_parallel"])  # InvalidInput (400) before anything changes
    if "paused" in data:
        (pool_control.pause if data["paused"] else pool_control.resume)(name)
    return pool_json(pool_control.state(name))
