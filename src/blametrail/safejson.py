"""Untrusted JSON with bounds: nesting depth, number length, finite numbers, and text that UTF-8 can store."""

from __future__ import annotations

import json
import math
import re

MAX_DEPTH = 64  # deeper than any payload a sender or this API uses; far below the interpreter's recursion limit
MAX_NUMBER_DIGITS = 100  # why: Python refuses ints past 4,300 digits with a ValueError, and no field needs 100
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class UnsafeJSON(ValueError):
    """The text is JSON but breaks a bound (or is too deep to parse); the message says which, for people."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise UnsafeJSON(f"a number has {len(text.lstrip('-'))} digits; at most {MAX_NUMBER_DIGITS} are accepted")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS + 10:
        raise UnsafeJSON(f"a number is {len(text)} characters long; at most {MAX_NUMBER_DIGITS} digits are accepted")
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJSON(f"the number {text[:20]} is too large")
    return value


def _constant(name: str) -> float:
    raise UnsafeJSON(f"{name} is not a JSON number")


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> object:
    """Parse JSON, raising json.JSONDecodeError (syntax), UnicodeDecodeError (bytes) or UnsafeJSON (a bound)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError as exc:
        raise UnsafeJSON(f"it is nested too deeply (at most {max_depth} levels are accepted)") from exc
    # why: text decoded from UTF-8 holds no surrogates, so a lone one can only come from a \\uD800-style escape
    reason = problem(value, max_depth=max_depth, check_text=bool(_SURROGATE_ESCAPE.search(text)))
    if reason:
        raise UnsafeJSON(reason)
    return value


def storable_text(value: str) -> bool:
    """Tell whether text can be encoded as UTF-8 (a lone surrogate such as "\\ud800" cannot)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def problem(value: object, *, max_depth: int = MAX_DEPTH, check_text: bool = True) -> str | None:
    """Return why a JSON-like value cannot be stored (too deep, text not UTF-8, a number not finite), else None."""
    if not isinstance(value, (dict, list, tuple)):
        return _scalar_problem(value, check_text)
    stack: list[tuple[dict | list | tuple, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"it is nested too deeply (at most {max_depth} levels are accepted)"
        if isinstance(item, dict):
            if check_text and not all(type(k) is not str or k.isascii() or storable_text(k) for k in item):
                return _NOT_UNICODE
            item = item.values()
        for child in item:
            kind = type(child)
            if kind is str:  # the common cases first: this walks every value written to a JSON column
                if check_text and not child.isascii() and not storable_text(child):
                    return _NOT_UNICODE
            elif kind is float:
                if not math.isfinite(child):
                    return f"it holds the number {child}, which JSON cannot store"
            elif kind is dict or kind is list or isinstance(child, (dict, list, tuple)):
                stack.append((child, depth + 1))
            elif (reason := _scalar_problem(child, check_text)) is not None:
                return reason
    return None


_NOT_UNICODE = "it holds text that is not valid Unicode (a lone surrogate such as \\ud800)"


def _scalar_problem(value: object, check_text: bool) -> str | None:
    if isinstance(value, str) and check_text and not storable_text(value):
        return _NOT_UNICODE
    if isinstance(value, float) and not math.isfinite(value):
        return f"it holds the number {value}, which JSON cannot store"
    return None


def scrub(value: object) -> object:
    """Return a copy of a parsed JSON value with text UTF-8 cannot encode (lone surrogates) replaced by "?"."""
    if isinstance(value, str):
        return value if storable_text(value) else value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
