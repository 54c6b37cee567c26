"""Typed values at the JSON boundary: validate JSON into Python values and dump them back, via pydantic."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from ..exceptions import InvalidInput


def jsonable(value: Any) -> Any:
    """JSON-compatible form of any value pydantic knows how to serialise (models, dates, sets…)."""
    return to_jsonable_python(value)


class TypeSpec:
    """A type (a pydantic model, ``int``, ``list[str]``…, or ``Any``) and its JSON schema."""

    def __init__(self, tp: Any = Any) -> None:
        self.type = Any if tp is None else tp

    @cached_property
    def adapter(self) -> TypeAdapter:
        return TypeAdapter(self.type)

    @property
    def is_any(self) -> bool:
        return self.type is Any

    def validate(self, data: Any, what: str = "input") -> Any:
        """JSON (or Python) data -> typed value; InvalidInput with pydantic's error list otherwise."""
        if self.is_any:
            return data
        try:
            return self.adapter.validate_python(data)
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False)
            ]
            summary = "; ".join(f"{'.'.join(map(str, e['loc'])) or what}: {e['msg']}" for e in errors)
            raise InvalidInput(f"Invalid {what}: {summary}", errors=errors) from None

    def dump(self, value: Any, what: str = "output") -> Any:
        """Typed value -> JSON, validated against the type first."""
        if self.is_any:
            return jsonable(value)
        return self.adapter.dump_python(self.validate(value, what), mode="json")

    def json_schema(self) -> dict[str, Any]:
        if self.is_any:
            return {}
        try:
            return self.adapter.json_schema()
        except Exception:  # a type pydantic validates but cannot describe
            return {}
