"""How a workflow's version sees its conditions, maps and sleep functions: by their compiled code, not their lines.

``fingerprint(fn)`` digests what the function does: its bytecode, constants, names and nested code objects
(recursively), its defaults and the values it closes over, but not its file, line numbers or name. Moving a
function keeps its fingerprint; editing it (or the value it captured) changes it. Two lambdas on one line are two
code objects, so they differ too.

``source_text(fn)`` is the readable text the drawing shows: a lambda's own expression (found among several on one
line by the columns its compiled code points at), else the function's qualified name.
"""

from __future__ import annotations

import ast
import datetime as dt
import decimal
import enum
import functools
import hashlib
import linecache
import re
import types
from collections.abc import Callable
from typing import Any

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # a repr naming a memory address differs in every process
_SCALARS = (type(None), bool, int, float, complex, str, bytes, dt.date, dt.time, dt.timedelta, decimal.Decimal)
_MAX_DEPTH = 6


def fingerprint(fn: Callable[..., Any] | None) -> str:
    """A short digest of what ``fn`` does, the same in every process and wherever its code sits in its file."""
    if fn is None:
        return ""
    return hashlib.sha256(repr(_describe(fn, 0, set())).encode()).hexdigest()[:16]


def _describe(fn: Any, depth: int, seen: set[int]) -> tuple:
    if id(fn) in seen or depth > _MAX_DEPTH:  # a recursive function, or a very deep closure
        return ("again", _qualified(fn))
    seen = seen | {id(fn)}
    if isinstance(fn, types.FunctionType):
        closure = []
        for cell in fn.__closure__ or ():
            try:
                closure.append(_value(cell.cell_contents, depth + 1, seen))
            except ValueError:  # a cell not yet filled
                closure.append(("empty",))
        return (
            "function",
            _code(fn.__code__, fn.__doc__),
            tuple(_value(v, depth + 1, seen) for v in fn.__defaults__ or ()),
            tuple((k, _value(v, depth + 1, seen)) for k, v in sorted((fn.__kwdefaults__ or {}).items())),
            tuple(closure),
        )
    if isinstance(fn, types.MethodType):
        return ("method", _describe(fn.__func__, depth + 1, seen), _qualified(type(fn.__self__)))
    if isinstance(fn, functools.partial):
        args = tuple(_value(v, depth + 1, seen) for v in fn.args)
        keywords = tuple((k, _value(v, depth + 1, seen)) for k, v in sorted(fn.keywords.items()))
        return ("partial", _describe(fn.func, depth + 1, seen), args, keywords)
    return ("callable", _qualified(fn))


def _code(code: types.CodeType, doc: str | None = None) -> tuple:
    consts = list(code.co_consts)
    if doc is not None and consts and consts[0] == doc:  # a docstring says nothing about what the code does
        consts[0] = None
    return (
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        code.co_code,
        tuple(_const(c) for c in consts),
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        getattr(code, "co_exceptiontable", b""),  # offsets only, no line numbers
    )


def _const(value: Any) -> Any:
    if isinstance(value, types.CodeType):
        return ("code", _code(value))
    if isinstance(value, tuple):
        return ("tuple", tuple(_const(v) for v in value))
    if isinstance(value, frozenset):  # its order follows string hashes, which differ between processes
        return ("frozenset", tuple(sorted(repr(_const(v)) for v in value)))
    return (type(value).__name__, repr(value))


def _value(value: Any, depth: int, seen: set[int]) -> Any:
    """A value a function captured (a closure cell or a default), as the same text in every process."""
    if isinstance(value, enum.Enum):
        return ("enum", _qualified(type(value)), value.name)
    if isinstance(value, _SCALARS):
        return (type(value).__name__, repr(value))
    if depth > _MAX_DEPTH:
        return ("deep", type(value).__name__)
    if isinstance(value, tuple | list):
        return (type(value).__name__, tuple(_value(v, depth + 1, seen) for v in value))
    if isinstance(value, set | frozenset):
        return (type(value).__name__, tuple(sorted(repr(_value(v, depth + 1, seen)) for v in value)))
    if isinstance(value, dict):
        items = sorted((repr(_value(k, depth + 1, seen)), _value(v, depth + 1, seen)) for k, v in value.items())
        return ("dict", tuple(items))
    if isinstance(value, type | types.ModuleType | types.BuiltinFunctionType):
        return ("named", _qualified(value))
    if callable(value):
        return _describe(value, depth, seen)
    text = repr(value)
    return ("object", _qualified(type(value)), "" if _ADDRESS.search(text) else text)


def _qualified(obj: Any) -> str:
    target = obj if hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', type(target).__name__)}"


# --- readable text ---------------------------------------------------------------------------------------------


def source_text(fn: Callable[..., Any] | None) -> str:
    """Readable text of a condition or map function for the drawing: a lambda's expression, else its name."""
    if fn is None:
        return ""
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType) and code.co_name == "<lambda>":
        text = _lambda_text(code, getattr(fn, "__globals__", None))
        if text:
            return text
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def _lambda_text(code: types.CodeType, module_globals: dict[str, Any] | None) -> str:
    source = "".join(linecache.getlines(code.co_filename, module_globals))
    tree = _parse(source) if source else None
    if tree is None:
        return ""
    params = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    lambdas = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Lambda)
        and n.lineno == code.co_firstlineno
        and tuple(a.arg for a in n.args.posonlyargs + n.args.args + n.args.kwonlyargs) == params
    ]
    if not lambdas:
        return ""
    spans = [
        (line, col, end_line, end_col)
        for line, end_line, col, end_col in code.co_positions()
        if None not in (line, end_line, col, end_col) and (line, col) != (end_line, end_col)
    ]

    def holds(node: ast.Lambda) -> bool:  # every instruction of the code lies inside this lambda
        start, end = (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)
        return all(start <= (s[0], s[1]) and (s[2], s[3]) <= end for s in spans)

    found = [n for n in lambdas if holds(n)] if spans else []
    if found:  # the innermost: a lambda nested in another's body also lies inside the outer one
        node = min(found, key=lambda n: (n.end_lineno - n.lineno, n.end_col_offset - n.col_offset))
    else:
        node = lambdas[0]
    text = ast.get_source_segment(source, node) or ""
    return " ".join(line.strip() for line in text.splitlines())


@functools.lru_cache(maxsize=32)
def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None
