"""What the translations share: the error for what cannot be translated, SSE framing, ids."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from router.errors import RequestRejected
from router.numbers import number


class Unmappable(RequestRejected):
    """A request field or value this endpoint cannot honour (400, naming it)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + json.dumps(data).encode() + b"\n\n"


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def expect(condition: bool, message: str, param: str) -> None:
    if not condition:
        raise Unmappable(message, param)


def optional_number(body: Mapping[str, Any], name: str, low: float, high: float) -> None:
    """A sampling setting: absent, or a finite number within the API's documented range
    (``1e400`` or a 400-digit integer is a 400, not a value passed on)."""
    value = body.get(name)
    expect(value is None or number(value, low, high) is not None,
           f"'{name}' must be a number from {low:g} to {high:g}", name)


def optional_bool(body: Mapping[str, Any], name: str) -> None:
    """``stream`` and the like: true, false or absent; ``"false"`` is no false (a 400, never a
    stream the caller did not ask for)."""
    value = body.get(name)
    expect(value is None or isinstance(value, bool), f"'{name}' must be true or false", name)


def type_tag(value: Mapping[str, Any], where: str) -> str | None:
    """The ``type`` tag of an object of the request: a string, or None when absent. A list or a
    number there is the caller's mistake (a 400 naming the field), not a key to look up."""
    tag = value.get("type")
    expect(tag is None or isinstance(tag, str), f"{where}.type must be a string",
           f"{where}.type")
    return tag


def optional_model(body: Mapping[str, Any]) -> None:
    """The router's own rule for ``model`` (router/request_check.py), said in translation."""
    value = body.get("model")
    expect(value is None or (isinstance(value, str) and bool(value.strip())),
           "'model' must be a non-empty string", "model")


def parse_arguments(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as an object; text that is no JSON object is kept whole."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"_unparsed_arguments": arguments}


def chat_usage(usage: Mapping[str, Any] | None) -> tuple[int, int, int, int]:
    """(prompt, completion, cached prompt, reasoning) tokens of a chat ``usage``."""
    usage = usage or {}
    details_in = usage.get("prompt_tokens_details") or {}
    details_out = usage.get("completion_tokens_details") or {}
    return (_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")),
            _int(details_in.get("cached_tokens")), _int(details_out.get("reasoning_tokens")))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
