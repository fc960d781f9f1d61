"""The standard chunk (``chat.completion.chunk``): what makes one standard — the shape of
OpenAI's published schema, and the types of every field the router and its callers read — and
how one that is not is made so or refused.

A provider's chunk that is already standard is forwarded unchanged (the common case: a few
key lookups and type tests per chunk). Any other is rebuilt (``as_delta``) and then ``check``ed:
a field of the wrong type is a bad response (classified, failed over or ended with an error),
never an exception further in. What a provider reports as usage is not judged here: absurd
numbers are replaced and flagged later (router.money.usage_guard).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.errors import Outcome, ProviderFailure

FINISH_REASONS = frozenset({None, "stop", "length", "tool_calls", "content_filter", "function_call"})
# Finish reasons some servers send, as OpenAI names them.
_FINISH_ALIASES = {"eos": "stop", "eos_token": "stop", "stop_sequence": "stop", "end_turn": "stop",
                   "max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
_MISSING = object()
_TEXT = frozenset({"content", "role", "reasoning", "reasoning_content", "refusal"})
MAX_INDEX = 1024  # choices and tool calls: more would only be a way to make us allocate


def is_standard(data: Mapping[str, Any], choices: list[Any]) -> bool:
    """Already a chunk as OpenAI's schema has it, every field we read of the right type: it is
    forwarded unchanged. Written for speed: it runs for every chunk of every answer."""
    if data.get("object") != "chat.completion.chunk" or "created" not in data:
        return False
    chunk_id, model = data.get("id"), data.get("model")
    if type(chunk_id) is not str or not chunk_id.startswith("chatcmpl-") or type(model) is not str:
        return False
    if not choices:
        return True
    if data.get("usage"):
        return False
    if len(choices) == 1:  # nearly always
        return _standard_choice(choices[0])
    return all(map(_standard_choice, choices))


def _standard_choice(choice: Any) -> bool:
    if type(choice) is not dict or "message" in choice or "index" not in choice:
        return False
    delta, index = choice.get("delta"), choice["index"]
    if type(delta) is not dict or type(index) is not int or not 0 <= index <= MAX_INDEX:
        return False
    if choice.get("finish_reason", _MISSING) not in FINISH_REASONS:
        return False
    for key, value in delta.items():  # usually one or two
        if value is not None and type(value) is not str and (
                key in _TEXT or (key == "tool_calls" and _tool_calls(value) is not None)):
            return False
    return choice.get("logprobs") is None or _logprobs_standard(choice["logprobs"])


def _logprobs_standard(logprobs: Any) -> bool:
    if logprobs is None:
        return True
    return (isinstance(logprobs, dict) and "content" in logprobs and "refusal" in logprobs
            and all(_token_standard(t) for key in ("content", "refusal")
                    for t in logprobs[key] or ()))


def _token_standard(token: Any) -> bool:
    return (isinstance(token, dict) and "bytes" in token and isinstance(token.get("top_logprobs"), list)
            and all(isinstance(t, dict) and "bytes" in t for t in token["top_logprobs"]))


def finish_reason(value: Any) -> str | None:
    if value in FINISH_REASONS:
        return value  # type: ignore[no-any-return]
    return _FINISH_ALIASES.get(str(value), "stop")


def as_delta(choice: Mapping[str, Any]) -> dict[str, Any]:
    """A choice as a standard streaming one (legacy exo sent both ``message`` and ``delta``)."""
    delta = choice.get("delta")
    if delta is None:  # a whole answer's message; a delta of the wrong type is left to ``check``
        message = choice.get("message")
        delta = dict(message) if isinstance(message, dict) else {}
    shaped = {"index": choice.get("index", 0), "delta": delta,
              "finish_reason": finish_reason(choice.get("finish_reason"))}
    if choice.get("logprobs") is not None:
        shaped["logprobs"] = standard_logprobs(choice["logprobs"])
    return shaped


def standard_logprobs(logprobs: Any) -> dict[str, Any] | None:
    """Both lists present (null when empty), every token with its ``bytes`` (exo leaves them out)."""
    if not isinstance(logprobs, dict):
        return None
    return {key: [_token(t) for t in logprobs[key] if isinstance(t, dict)]
            if isinstance(logprobs.get(key), list) else None for key in ("content", "refusal")}


def _token(token: dict[str, Any]) -> dict[str, Any]:
    top = token.get("top_logprobs")
    return {**token, "bytes": token.get("bytes"),
            "top_logprobs": [{**t, "bytes": t.get("bytes")} for t in top if isinstance(t, dict)]
            if isinstance(top, list) else []}


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
    return None


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
