"""JSON and TOML from files a user hands us (config.json, a plan, an artifact's metadata), parsed
with limits: a nesting depth and number sizes no real file needs. Python's parsers recurse (a
deeply nested array is a RecursionError) and refuse integers over 4300 digits with a ValueError;
here both, and any depth past MAX_DEPTH, are one BadInput naming the file."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from .errors import BadInput

MAX_DEPTH = 32  # config.json and plans nest 3-4 levels


def json_data(text: str | bytes, where: str) -> Any:
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{where} is not valid JSON ({exc.__class__.__name__})") from None
    except (RecursionError, ValueError) as exc:  # nesting; an integer of > 4300 digits
        raise BadInput(f"{where} is not JSON effconvert reads: {_why(exc)}") from None
    return _shallow(data, where)


def toml_data(text: str, where: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{where} is not valid TOML: {exc}") from None
    except (RecursionError, ValueError) as exc:
        raise BadInput(f"{where} is not TOML effconvert reads: {_why(exc)}") from None
    return _shallow(data, where)


def _why(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else "a number too large"


def _shallow(data: Any, where: str) -> Any:
    """`data`, refused when it nests deeper than MAX_DEPTH (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadInput(f"{where} nests more than {MAX_DEPTH} levels deep: not a file effconvert reads")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return data
