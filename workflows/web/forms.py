"""HTML forms generated from a JSON Schema (a workflow's input, a step's resume data, an event's payload).

The form only *shapes* the data: it turns posted fields into JSON and hands that to the engine, whose pydantic
validation (the same one ``flow.start`` and the API use) decides; its errors (``InvalidInput.errors``, pydantic
``loc``s) are mapped back to the fields. Supported: strings (with ``format`` date, date-time, email, uri),
integers, numbers, booleans, enums and literals (selects), nested objects, lists (of anything supported, items
added and removed in the browser), optional values, defaults, and descriptions as help text. Anything else
(unions, free-form dicts, ``Any``) is a JSON text area.

Field names are the prefix and the path joined with dots: ``input.address.street``, ``input.tags.0``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .. import conf
from ..definition import limits
from ..exceptions import InvalidInput

OMIT = object()  # a field left empty: let pydantic use the default (or say it is required)
ITEM_MARK = "__item__"  # hidden input present for every list item, so that an unchecked checkbox item counts
TEXTAREA_MIN_LENGTH = 200


@dataclass
class Field:
    name: str
    loc: tuple[Any, ...]
    kind: str  # text textarea email url number integer checkbox bool select date datetime object array json const
    label: str
    help: str = ""
    required: bool = False
    nullable: bool = False
    value: Any = None  # as the widget shows it (a string, a bool for checkboxes)
    choices: list[tuple[str, str]] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    item: Field | None = None  # a list's template for a new item (its name has "__index__" for the index)
    schema: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    id_prefix: str = "f"

    @property
    def id(self) -> str:
        return f"{self.id_prefix}-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)

    @property
    def is_group(self) -> bool:
        return self.kind in ("object", "array")

    @property
    def template_name(self) -> str:
        return f"workflows/forms/{self.kind if self.is_group else 'input'}.html"

    @property
    def input_type(self) -> str:
        return {
            "number": "number",
            "integer": "number",
            "date": "date",
            "datetime": "datetime-local",
            "email": "email",
            "url": "url",
        }.get(self.kind, "text")

    @property
    def item_mark(self) -> str:
        return f"{self.name}.{ITEM_MARK}"


def _title(name: Any) -> str:
    return str(name).replace("_", " ").replace("-", " ").strip().capitalize() or "Value"


class SchemaForm:
    """A form for one JSON Schema; ``prefix`` names its fields. Bind posted data with ``bind()``."""

    def __init__(
        self, schema: dict[str, Any] | None, *, prefix: str = "input", initial: Any = OMIT, id_prefix: str = "f"
    ) -> None:
        self.schema = schema or {}
        self.prefix = prefix
        self.id_prefix = id_prefix  # several forms on one page need distinct element ids
        self.defs = self.schema.get("$defs", {})
        self.root = self._build(self.schema, prefix, (), "", True, initial, depth=0)
        self.value: Any = OMIT
        self.non_field_errors: list[str] = []

    # --- building the field tree -------------------------------------------------------------------------------

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        for _ in range(20):
            if "$ref" in node:
                ref = node["$ref"].rsplit("/", 1)[-1]
                extra = {k: v for k, v in node.items() if k != "$ref"}
                node = {**self.defs.get(ref, {}), **extra}
            elif "allOf" in node and len(node["allOf"]) == 1:
                extra = {k: v for k, v in node.items() if k != "allOf"}
                node = {**node["allOf"][0], **extra}
            else:
                break
        return node

    def _build(
        self, node: dict[str, Any], name: str, loc: tuple, key: str, required: bool, value: Any, depth: int
    ) -> Field:
        node = self._resolve(node if isinstance(node, dict) else {})
        nullable = False
        variants = node.get("anyOf") or node.get("oneOf")
        if variants:
            others = [self._resolve(v) for v in variants if v.get("type") != "null"]
            nullable = len(others) < len(variants)
            if len(others) == 1:
                meta = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
                node = {**others[0], **meta}
            else:
                node = {**node, "type": None}
        label = node.get("title") or _title(key) if key else node.get("title") or "Input"
        if key and node.get("title") and node["title"] == _title(key).title():
            label = _title(key)  # pydantic's "Order Id" reads better as "Order id"
        f = Field(name=name, loc=loc, kind="json", label=label, help=node.get("description", ""), schema=node)
        f.id_prefix = self.id_prefix
        f.required, f.nullable = required, nullable
        if value is OMIT and "default" in node:
            value = node["default"]
        kind = node.get("type")
        if "const" in node:
            f.kind, f.value = "const", node["const"]
        elif "enum" in node:
            f.kind = "select"
            f.choices = [(_enum_key(v), str(v)) for v in node["enum"]]
            if nullable or (not required and "default" not in node):
                f.choices.insert(0, ("", "—"))
            f.value = "" if value is OMIT or value is None else _enum_key(value)
        elif kind == "object" and "properties" in node and depth < 8:
            f.kind = "object"
            needed = set(node.get("required", []))
            current = value if isinstance(value, dict) else {}
            for prop, sub in node["properties"].items():
                f.children.append(
                    self._build(
                        sub, f"{name}.{prop}", (*loc, prop), prop, prop in needed, current.get(prop, OMIT), depth + 1
                    )
                )
        elif kind == "array" and isinstance(node.get("items"), dict) and depth < 8:
            f.kind = "array"
            items = node["items"]
            f.item = self._build(items, f"{name}.__index__", (*loc, "__index__"), "item", True, OMIT, depth + 1)
            f.item.label = "Item"
            for i, item in enumerate(value if isinstance(value, list) else []):
                child = self._build(items, f"{name}.{i}", (*loc, i), "item", True, item, depth + 1)
                child.label = f"Item {i + 1}"
                f.children.append(child)
            f.attrs = {k: node[k] for k in ("minItems", "maxItems") if k in node}
        elif kind == "boolean":
            f.kind = "bool" if nullable else "checkbox"
            if nullable:
                f.choices = [("", "—"), ("true", "yes"), ("false", "no")]
                f.value = "" if value in (OMIT, None) else ("true" if value else "false")
            else:
                f.value = value is True
        elif kind in ("integer", "number"):
            f.kind = kind
            f.value = "" if value in (OMIT, None) else str(value)
            f.attrs = {"step": "1" if kind == "integer" else "any"}
            for src, dst in (("minimum", "min"), ("maximum", "max")):
                if src in node:
                    f.attrs[dst] = node[src]
        elif kind == "string":
            fmt = node.get("format", "")
            f.kind = {"date": "date", "date-time": "datetime", "email": "email", "uri": "url"}.get(fmt, "text")
            if f.kind == "text" and (node.get("maxLength") or 0) >= TEXTAREA_MIN_LENGTH or fmt == "textarea":
                f.kind = "textarea"
            f.value = "" if value in (OMIT, None) else str(value)
            if f.kind == "datetime" and f.value:
                f.value = f.value[:19]  # datetime-local takes no zone
            for src, dst in (("minLength", "minlength"), ("maxLength", "maxlength"), ("pattern", "pattern")):
                if src in node:
                    f.attrs[dst] = node[src]
        else:  # any JSON, a free-form dict, a union: edited as JSON text
            f.kind = "json"
            f.value = "" if value is OMIT else json.dumps(value, indent=2)
        return f

    @property
    def choice(self) -> Field | None:
        """The one required yes/no field of a schema (``approved: bool``, other fields beside it or not): pages
        show it as two buttons (Approve / Reject), each posting its value, never as a checkbox whose blank means
        false. None when the schema has no such field or several booleans."""
        root = self.root
        if root.kind in ("checkbox", "bool"):
            return root if root.required else None
        booleans = [f for f in root.children if f.kind in ("checkbox", "bool")] if root.kind == "object" else []
        return booleans[0] if len(booleans) == 1 and booleans[0].required else None

    # --- reading posted data -----------------------------------------------------------------------------------

    def bind(self, post: Any) -> SchemaForm:
        """Read the posted fields into ``self.value`` (JSON for the engine); JSON syntax errors go to the fields."""
        self.root = self._rebuild(self.root, post)
        self.value = self._read(self.root, post)
        if self.value is OMIT:
            self.value = None if self.root.kind == "json" else {}
        return self

    def _rebuild(self, f: Field, post: Any) -> Field:
        """Recreate list items from what was posted (the browser may have added or removed some)."""
        if f.kind == "object":
            f.children = [self._rebuild(c, post) for c in f.children]
        elif f.kind == "array":
            indices = set()
            prefix = f.name + "."
            for key in post:
                if key.startswith(prefix):
                    head = key[len(prefix) :].split(".", 1)[0]
                    if head.isascii() and head.isdigit():  # not "²": str.isdigit() takes any digit
                        indices.add(int(head))
            items_schema = f.schema.get("items", {})
            f.children = []
            for n, i in enumerate(sorted(indices)):
                child = self._build(items_schema, f"{f.name}.{i}", (*f.loc, n), "item", True, OMIT, 1)
                child.label = f"Item {n + 1}"
                f.children.append(self._rebuild(child, post))
        return f

    def _read(self, f: Field, post: Any) -> Any:
        raw = post.get(f.name)
        if f.kind == "object":
            out = {}
            for child in f.children:
                v = self._read(child, post)
                if v is not OMIT:
                    out[child.loc[-1]] = v
            return out
        if f.kind == "array":
            return [v for v in (self._read(c, post) for c in f.children) if v is not OMIT]
        if f.kind == "const":
            return f.value
        if f.kind == "checkbox":
            if raw is None and f is self.choice:  # Approve / Reject: no button's value is no answer, not "no"
                return OMIT
            f.value = raw is not None and raw not in ("", "false", "off", "0")
            return f.value
        raw = "" if raw is None else str(raw)
        f.value = raw
        if f.kind == "bool":
            return {"true": True, "false": False}.get(raw, None if f.required else OMIT)
        if raw.strip() == "" and f.kind not in ("text", "textarea"):
            return None if (f.nullable and f.required) else OMIT
        if f.kind == "select":
            for value in f.schema.get("enum", []):
                if _enum_key(value) == raw:
                    return value
            return raw  # not an allowed value: pydantic says which are
        if f.kind == "integer":
            return _number(raw, int)
        if f.kind == "number":
            return _number(raw, float)
        if f.kind == "json":
            try:
                return limits.loads(raw, f.label, **conf.json_limits())
            except InvalidInput as exc:
                e = exc.errors[0]
                f.errors.append(f"Invalid JSON: {e['msg']}" if e["type"] == "json_invalid" else e["msg"])
                return OMIT
        if raw == "":  # a blank text field: the default, or pydantic's "Field required"
            return None if f.nullable and not f.required else OMIT
        return raw

    # --- errors ------------------------------------------------------------------------------------------------

    def fields(self) -> list[Field]:
        """Every field, depth first."""
        out, todo = [], [self.root]
        while todo:
            f = todo.pop(0)
            out.append(f)
            todo[:0] = f.children
        return out

    @property
    def has_errors(self) -> bool:
        return bool(self.non_field_errors) or any(f.errors for f in self.fields())

    def add_errors(self, errors: list[dict[str, Any]], message: str = "") -> None:
        """Attach pydantic-style errors (``{"loc", "msg", "type"}``) to the fields their ``loc`` names."""
        by_loc = {tuple(f.loc): f for f in self.fields()}
        for e in errors:
            loc = tuple(e.get("loc") or ())
            while loc and loc not in by_loc:
                loc = loc[:-1]
            target = by_loc.get(loc)
            if target is None or (target is self.root and self.root.kind == "object"):
                self.non_field_errors.append(_where(e) + e.get("msg", ""))
            else:
                target.errors.append(e.get("msg", ""))
        if not errors and message:
            self.non_field_errors.append(message)

    def error_list(self) -> list[dict[str, Any]]:
        """Errors for the browser: ``{"field": <name>, "id": <input id>, "msg"}`` (``field`` None: the form's)."""
        out = [{"field": None, "id": None, "msg": m} for m in self.non_field_errors]
        for f in self.fields():
            out += [{"field": f.name, "id": f.id, "msg": m} for m in f.errors]
        return out


def _where(error: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in error.get("loc") or ())
    return f"{loc}: " if loc else ""


def _enum_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _number(raw: str, kind: type) -> Any:
    try:
        return kind(raw.strip())
    except ValueError:
        if kind is int:
            try:
                as_float = float(raw)
                return int(as_float) if as_float.is_integer() else as_float
            except ValueError:
                pass
        return raw.strip()  # pydantic explains what is wrong with it
