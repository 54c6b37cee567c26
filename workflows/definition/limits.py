"""Bounds on JSON that crosses the boundary: nesting depth, size, non-finite numbers and NUL characters.

Everything a user sends (a run's input, resume data, an event's payload, an API body, a form's JSON field, a
websocket frame) passes ``check`` (Python values) or ``loads`` (JSON text) before anything reads or stores it, so
that bad input is an ``InvalidInput`` (a 400) and never a ``RecursionError``, a serialiser's depth error, a
database that refuses ``NaN`` or ``\\u0000`` (a 500), or a value silently changed (``NaN`` stored as ``null``).
The limits are arguments: the layers above pass the ``WORKFLOWS`` settings (``MAX_JSON_DEPTH``,
``MAX_INPUT_BYTES``); this layer reads no settings.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..exceptions import InvalidInput


def _error(loc: tuple, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": kind}


def problem(value: Any, max_depth: int) -> dict[str, Any] | None:
    """The first thing in ``value`` that JSON storage cannot take, as a pydantic-style error, or None.

    Walks dicts, lists and tuples without recursion (any depth is safe to inspect); other objects (models,
    dates) are left to the validation and serialisation that follow, whose JSON result is checked again.
    """
    stack: list[tuple[Any, int, tuple]] = [(value, 0, ())]
    while stack:
        v, depth, loc = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return _error(loc, "Text must not contain NUL characters (\\u0000)", "string_nul")
        elif isinstance(v, float):
            if not math.isfinite(v):
                return _error(loc, "Numbers must be finite: NaN and Infinity are not JSON", "finite_number")
        elif isinstance(v, (dict, list, tuple)):
            if depth >= max_depth:
                return _error(loc, f"Nested deeper than {max_depth} levels", "too_deep")
            if isinstance(v, dict):
                for k, item in v.items():
                    if isinstance(k, str) and "\x00" in k:
                        return _error(loc, "Keys must not contain NUL characters (\\u0000)", "string_nul")
                    stack.append((item, depth + 1, (*loc, k)))
            else:
                stack.extend((item, depth + 1, (*loc, i)) for i, item in enumerate(v))
    return None


def _invalid(what: str, error: dict[str, Any]) -> InvalidInput:
    where = ".".join(str(p) for p in error["loc"]) or what
    return InvalidInput(f"Invalid {what}: {where}: {error['msg']}", errors=[error])


def size_of(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON. ValueError for what JSON cannot hold (e.g. a 5,000-digit int)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())


def check(value: Any, what: str, *, max_depth: int, max_bytes: int | None = None) -> None:
    """InvalidInput if ``value`` is nested too deep, holds NaN/Infinity or a NUL character, or (for JSON values,
    with ``max_bytes``) is bigger than ``max_bytes`` as JSON text."""
    error = problem(value, max_depth)
    if error is not None:
        raise _invalid(what, error)
    if max_bytes is not None:
        try:
            size = size_of(value)
        except (ValueError, TypeError) as exc:
            raise _invalid(what, _error((), f"Not storable as JSON: {exc}", "json_invalid")) from None
        if size > max_bytes:
            raise _invalid(what, _error((), f"{size} bytes of JSON: at most {max_bytes} are accepted", "too_large"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (numbers must be finite)")


def loads(text: str | bytes, what: str, *, max_depth: int, max_bytes: int) -> Any:
    """Parse JSON text within the limits; InvalidInput (with a clear message) for anything else.

    The size is checked before parsing; ``NaN``, ``Infinity`` and numbers that overflow to infinity (``1e999``)
    are refused, and so are ``\\u0000`` escapes and nesting deeper than ``max_depth``.
    """
    size = len(text.encode()) if isinstance(text, str) else len(text)
    if size > max_bytes:
        raise _invalid(what, _error((), f"{size} bytes: at most {max_bytes} are accepted", "too_large"))
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:  # the parser's own guard, far below anything that could harm the process
        raise _invalid(what, _error((), f"Nested deeper than {max_depth} levels", "too_deep")) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Malformed JSON: {exc}", errors=[_error((), str(exc), "json_invalid")]) from None
    check(value, what, max_depth=max_depth)
    return value
