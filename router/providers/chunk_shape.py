"""What makes a ``chat.completion.chunk`` standard (OpenAI's published schema), and how one
that is not is made so. A standard chunk is forwarded as the provider sent it; only the others
are rebuilt, so the common case costs a few key lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FINISH_REASONS = frozenset({None, "stop", "length", "tool_calls", "content_filter", "function_call"})
# Finish reasons some servers send, as OpenAI names them.
_FINISH_ALIASES = {"eos": "stop", "eos_token": "stop", "stop_sequence": "stop", "end_turn": "stop",
                   "max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
_MISSING = object()


def is_standard(data: Mapping[str, Any], choices: list[Any]) -> bool:
    """Already a chunk as OpenAI's schema has it (the fields a client may rely on are there)."""
    if (data.get("object") != "chat.completion.chunk" or "created" not in data
            or "model" not in data or not str(data.get("id", "")).startswith("chatcmpl-")):
        return False
    if not choices:
        return True
    if data.get("usage"):
        return False
    for c in choices:  # a plain loop: one choice is the common case
        if (not isinstance(c, dict) or "delta" not in c or "index" not in c or "message" in c
                or c.get("finish_reason", _MISSING) not in FINISH_REASONS):
            return False
        if c.get("logprobs") is not None and not _logprobs_standard(c["logprobs"]):
            return False
    return True


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
    if not isinstance(delta, dict):
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
