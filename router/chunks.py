"""The standard chunk (``chat.completion.chunk``) as the router reads it, checked once as it
comes from an adapter: a provider's chunk with a field of the wrong type is a bad response
(classified, failed over or ended with an error), never an exception further in.

Only the fields the router and its callers read are checked, a few type tests per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.errors import Outcome, ProviderFailure

_TEXT = frozenset({"content", "role", "reasoning", "reasoning_content", "refusal"})
_TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")
MAX_INDEX = 1024  # choices and tool calls: more would only be a way to make us allocate


def is_standard(data: Mapping[str, Any], choices: list[Any]) -> bool:
    """Whether a provider's chunk is already a well-formed standard chunk (the common case: it is
    forwarded as sent). False sends it the slow way: rebuilt, then ``check``ed. Written for
    speed: it runs for every chunk of every answer."""
    if data.get("object") != "chat.completion.chunk":
        return False
    chunk_id = data.get("id")
    if type(chunk_id) is not str or not chunk_id.startswith("chatcmpl-"):
        return False
    usage, model = data.get("usage"), data.get("model")
    if (usage and (choices or _usage(usage) is not None)) or (model is not None and type(model) is not str):
        return False
    for choice in choices:
        if type(choice) is not dict or "message" in choice:
            return False
        delta, index, finish = choice.get("delta"), choice.get("index", 0), choice.get("finish_reason")
        if type(delta) is not dict or type(index) is not int or not 0 <= index <= MAX_INDEX \
                or (finish is not None and (type(finish) is not str or finish == "error")):
            return False
        for key, value in delta.items():  # usually one or two
            if value is not None and type(value) is not str and (
                    key in _TEXT or (key == "tool_calls" and _tool_calls(value) is not None)):
                return False
    return True


def check(chunk: Mapping[str, Any]) -> None:
    """Raise a BAD_RESPONSE ProviderFailure naming what is wrong with the chunk."""
    problem = _problem(chunk)
    if problem is not None:
        raise ProviderFailure(Outcome.BAD_RESPONSE, f"a malformed chunk: {problem}")


def _problem(chunk: Mapping[str, Any]) -> str | None:
    choices = chunk.get("choices")
    if type(choices) is not list:
        return "choices is not a list"
    for n, choice in enumerate(choices):
        problem = _choice(choice) if type(choice) is dict else "is not an object"
        if problem is not None:
            return f"choices[{n}] {problem}"
    model = chunk.get("model")
    if model is not None and type(model) is not str:
        return "model is not a string"
    usage = chunk.get("usage")
    return None if usage is None else _usage(usage)


def _choice(choice: dict[str, Any]) -> str | None:
    index = choice.get("index", 0)
    if type(index) is not int or not 0 <= index <= MAX_INDEX:
        return "index is not a small whole number"
    finish = choice.get("finish_reason")
    if finish is not None and type(finish) is not str:
        return "finish_reason is not a string"
    delta = choice.get("delta")
    if delta is None:
        return None
    if type(delta) is not dict:
        return "delta is not an object"
    for key, value in delta.items():  # usually one or two keys
        if value is None or type(value) is str:
            continue
        if key in _TEXT:
            return f"delta.{key} is not a string"
        if key == "tool_calls":
            return _tool_calls(value)
    return None


def _index(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_INDEX


def _tool_calls(calls: Any) -> str | None:
    if type(calls) is not list:
        return "delta.tool_calls is not a list"
    for call in calls:
        if type(call) is not dict or not _index(call.get("index", 0)):
            return "delta.tool_calls has an entry that is not an object with a small index"
        function = call.get("function")
        if function is None:
            continue
        if type(function) is not dict or any(
                function.get(k) is not None and type(function.get(k)) is not str
                for k in ("name", "arguments")):
            return "delta.tool_calls has a function whose name or arguments are not strings"
        if call.get("id") is not None and type(call["id"]) is not str:
            return "delta.tool_calls has an id that is not a string"
    return None


def _usage(usage: Any) -> str | None:
    if type(usage) is not dict:
        return "usage is not an object"
    for key in _TOKENS:
        value = usage.get(key)
        if value is not None and (type(value) is not int or value < 0):
            return f"usage.{key} is not a whole number"
    cost = usage.get("cost")
    if cost is not None and type(cost) not in (int, float):
        return "usage.cost is not a number"
    return None
