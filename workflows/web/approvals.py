"""The run page's approval of an agent's tool call (``agent_step(approval=...)``): the tool and its arguments,
*Approve*, *Deny* with a reason, and *Edit arguments* in a form generated from the tool's JSON Schema.

Each is a resume of the suspended agent step with a ``Decision`` (``{"approved": True}``, ``{"approved": False,
"reason": ...}``, ``{"approved": True, "args": {...}}``), posted to the same resume action as the generic form
with a ``decision`` field; the engine checks edited arguments against the tool's schema (``InvalidInput``: the
run stays suspended and the errors show next to the fields).
"""

from __future__ import annotations

import json
from typing import Any

from ..engine import graph_for
from ..store.models import Run, StepRun
from .forms import SchemaForm

DECISIONS = ("approve", "deny", "edit")


def is_approval(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("tool"), str) and "tool_call_id" in payload


def tool_schema(run: Run, sr: StepRun, tool: str) -> dict[str, Any] | None:
    """The JSON Schema of ``tool``'s arguments, from the agent step's definition (None if not deployed here)."""
    try:
        block = graph_for(run).blocks[sr.block]
    except Exception:  # noqa: BLE001 - a version not deployed here: the arguments are edited as JSON
        return None
    for node in block.nodes:
        if node.step.id == sr.step_id:
            return (getattr(node.step.check_resume, "tool_schemas", None) or {}).get(tool)
    return None


def approval_context(run: Run, target: dict[str, Any], index: int) -> dict[str, Any] | None:
    """What the approval UI shows for a suspended step, or None if it does not wait for a tool's approval."""
    sr = target["step"]
    payload = sr.suspend_payload
    if target["path"] != sr.path or not is_approval(payload):  # (a nested run's steps keep the generic form)
        return None
    args = payload.get("args") if isinstance(payload.get("args"), dict) else {}
    schema = tool_schema(run, sr, payload["tool"])
    return {
        "tool": payload["tool"],
        "args": [(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in args.items()],
        "form": args_form(schema, args, id_prefix=f"approve{index}"),
        "schema": schema,
    }


def args_form(schema: dict[str, Any] | None, initial: Any = None, id_prefix: str = "approve") -> SchemaForm:
    return SchemaForm(schema or {"type": "object"}, prefix="args", initial=initial or {}, id_prefix=id_prefix)


def decision_from(post: Any, run: Run, target: dict[str, Any] | None) -> tuple[dict[str, Any], SchemaForm | None]:
    """The resume data a posted approval form means; the bound arguments form for *Edit arguments*."""
    decision = post.get("decision")
    if decision == "approve":
        return {"approved": True}, None
    if decision == "deny":
        return {"approved": False, "reason": (post.get("reason") or "").strip() or None}, None
    sr = target["step"] if target else None
    tool = (sr.suspend_payload or {}).get("tool") if sr is not None and is_approval(sr.suspend_payload) else None
    form = args_form(tool_schema(run, sr, tool) if tool else None).bind(post)
    return {"approved": True, "args": None if form.has_errors else form.value}, form


def form_errors(post: Any, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors of edited arguments (``loc`` ``("args", name)``) located in the arguments form (``(name,)``)."""
    if post.get("decision") != "edit":
        return errors
    return [{**e, "loc": tuple(e.get("loc") or ())[1:]} for e in errors if tuple(e.get("loc") or ())[:1] == ("args",)]
