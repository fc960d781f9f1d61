"""A chat request checked before any provider is contacted: every field the router reads has the
type it reads it as, and nothing is nested deeper than MAX_DEPTH; anything else is the caller's
mistake (RequestRejected: a 400 at the endpoint), never an exception further in.

Fields the router does not read go to the provider as they are (a provider's own 400 comes back
to the caller as ``bad-request``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.errors import RequestRejected

MAX_DEPTH = 64  # JSON schemas of tools nest a dozen levels; a body nested deeper is an attack
_OPTIONAL_BOOL = ("stream",)
_OPTIONAL_COUNT = ("max_tokens", "max_completion_tokens")


def validate_request(request: Mapping[str, Any]) -> None:
    """Raise RequestRejected naming the first problem."""
    check_depth(request)
    _check_messages(request.get("messages"))
    model = request.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise RequestRejected("'model' must be a non-empty string")
    for key in _OPTIONAL_BOOL:
        if request.get(key) is not None and not isinstance(request[key], bool):
            raise RequestRejected(f"'{key}' must be true or false")
    for key in _OPTIONAL_COUNT:
        value = request.get(key)
        if value is not None and (type(value) is not int or value < 1):
            raise RequestRejected(f"'{key}' must be a whole number, 1 or more")
    _check_stream_options(request.get("stream_options"))


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise RequestRejected("the request needs a non-empty 'messages' list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestRejected(f"messages[{index}] must be an object with a 'role'")
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(isinstance(part, dict) for part in content):
            raise RequestRejected(f"messages[{index}].content must be a string or a list of "
                                  "content parts (objects)")


def _check_stream_options(options: Any) -> None:
    if options is None:
        return
    if not isinstance(options, dict):
        raise RequestRejected("'stream_options' must be an object")
    usage = options.get("include_usage")
    if usage is not None and not isinstance(usage, bool):
        raise RequestRejected("'stream_options.include_usage' must be true or false")


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise RequestRejected when lists and objects nest deeper than ``limit`` (walked without
    recursion, containers only: a few microseconds for a usual request)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise RequestRejected(f"the request is nested deeper than {limit} levels")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
