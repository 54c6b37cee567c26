"""The pools' JSON API: each pool's limits and what they are doing, and changing them at runtime.

``GET api/pools/``: every pool (``engine.pool_control.PoolState``). ``GET api/pools/<name>/``: one.
``POST api/pools/<name>/`` ``{"max_parallel": 4}`` (``null``: back to the settings' value), ``{"paused": true}``
or both: applied at once in every process, no restart. Changing a pool needs staff or ``workflows.change_pool``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from .. import conf
from ..engine import pool_control
from ..store.models import Run, StepRun
from .endpoints import ApiError, endpoint
from .endpoints import body as _body


def can_control(user: Any) -> bool:
    return bool(user.is_staff or user.has_perm("workflows.change_pool"))


def waits_of(run: Run) -> list[dict[str, Any]]:
    """Each pending step of the run with why it waits (``reason``: paused, rate, backoff, key, pool_full,
    priority, foreach, admitting), a sentence, and ``until`` when it may go, if known."""
    reasons = pool_control.wait_reasons(run.pk)
    rows = StepRun.objects.filter(pk__in=list(reasons)).order_by("block", "path").values_list("pk", "path", "pool")
    return [{"path": path, "pool": pool, **vars(reasons[pk])} for pk, path, pool in rows]


def _known(name: str) -> str:
    if name not in conf.pools():
        raise ApiError(404, f"No pool named {name!r}")
    return name


def pool_json(state: pool_control.PoolState) -> dict[str, Any]:
    return {**state.as_json(), "url": reverse("workflows:api-pool", args=[state.name])}


@endpoint("GET")
def pools(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"results": [pool_json(s) for s in pool_control.states()]})


@endpoint("GET", "POST")
def pool(request: HttpRequest, name: str) -> JsonResponse:
    name = _known(name)
    if request.method != "POST":
        return JsonResponse(pool_json(pool_control.state(name)))
    if not can_control(request.user):
        raise ApiError(403, "Changing a pool needs staff status or the workflows.change_pool permission")
    data = _body(request)
    unknown = sorted(set(data) - {"max_parallel", "paused"})
    if unknown or not data:
        raise ApiError(400, f"Send max_parallel (an integer, or null) and/or paused (true or false); got {unknown}")
    if "paused" in data and not isinstance(data["paused"], bool):
        raise ApiError(400, "paused must be true or false")
    if "max_parallel" in data:
        pool_control.set_limit(name, data["max_parallel"])  # InvalidInput (400) before anything changes
    if "paused" in data:
        (pool_control.pause if data["paused"] else pool_control.resume)(name)
    return JsonResponse(pool_json(pool_control.state(name)))
