"""What a routed request returns, and the assembly of a whole answer from stream chunks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router.errors import Attempt


@dataclass(frozen=True, slots=True)
class Result:
    request_id: str
    response: dict[str, Any]  # a complete OpenAI chat.completion
    provider_used: str
    model: str  # the id the provider was asked for
    logical_model: str  # what the caller asked for
    cost_usd: float
    cost_source: str  # reported | price-table | free | estimated
    usage: dict[str, Any]
    attempts: tuple[Attempt, ...]
    streamed: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    usage_estimated: bool = False
    flags: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        choices = self.response.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")

    @property
    def failed_over(self) -> bool:
        """True when a provider before the one that answered failed or was skipped for its
        health, budget or readiness (not for being disabled, keyless or not allowed)."""
        policy = {"disabled", "no-key", "not-allowed"}
        return any(a.outcome != "ok" and str(a.outcome) not in policy for a in self.attempts)

    def as_json(self) -> dict[str, Any]:
        return {"response": self.text, "provider_used": self.provider_used, "model": self.model,
                "cost_usd": self.cost_usd, "usage": self.usage,
                "attempts": [a.as_dict() for a in self.attempts]}


def text_length(messages: Any) -> int:
    total = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
    return total


def estimate_tokens(chars: int) -> int:
    """About four characters a token for English text; never zero for non-empty text."""
    return max(1, round(chars / 4)) if chars else 0


class Assembler:
    """Collects standard chunks into one chat.completion."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None
        self.completion_chars = 0

    def add(self, chunk: Mapping[str, Any]) -> None:
        self.id = self.id or str(chunk.get("id", ""))
        self.model = self.model or str(chunk.get("model", ""))
        if chunk.get("usage"):
            self.usage = dict(chunk["usage"])
        for choice in chunk.get("choices") or ():
            self._merge(choice)

    def _merge(self, choice: Mapping[str, Any]) -> None:
        slot = self.choices.setdefault(int(choice.get("index", 0)), {
            "message": {"role": "assistant", "content": ""}, "finish_reason": None})
        delta = choice.get("delta") or {}
        message = slot["message"]
        if delta.get("role"):
            message["role"] = delta["role"]
        if delta.get("content"):
            message["content"] += delta["content"]
            self.completion_chars += len(delta["content"])
        for call in delta.get("tool_calls") or ():
            _merge_tool_call(message.setdefault("tool_calls", []), call)
        if choice.get("finish_reason"):
            slot["finish_reason"] = choice["finish_reason"]

    def completion(self, usage: Mapping[str, Any]) -> dict[str, Any]:
        choices = [{"index": i, **self.choices[i]} for i in sorted(self.choices)] or [
            {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]
        return {"id": self.id or "chatcmpl-exo-bridge", "object": "chat.completion",
                "created": self.created, "model": self.model, "choices": choices,
                "usage": dict(usage)}


def _merge_tool_call(calls: list[dict[str, Any]], part: Mapping[str, Any]) -> None:
    index = int(part.get("index", len(calls)))
    while len(calls) <= index:
        calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    call = calls[index]
    call["id"] = part.get("id") or call["id"]
    function = part.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


def final_usage(upstream: Mapping[str, Any] | None, prompt_chars: int,
                completion_chars: int) -> tuple[dict[str, Any], bool]:
    """The request's usage, and whether it had to be estimated from text length."""
    if upstream and isinstance(upstream.get("prompt_tokens"), int) \
            and isinstance(upstream.get("completion_tokens"), int):
        usage = dict(upstream)
        usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
        return usage, False
    prompt, completion = estimate_tokens(prompt_chars), estimate_tokens(completion_chars)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}, True
