"""What a routed request returns, the assembly of a whole answer from stream chunks, and an
answer's footer as people read it (the same in the chat, the assistant and ``ask``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router.errors import Attempt, Outcome
from router.money.terms import CostSource, Flag
from router.money.usd import usd


@dataclass(frozen=True, slots=True)
class Result:
    request_id: str
    response: dict[str, Any]  # a complete OpenAI chat.completion
    provider_used: str
    model: str  # the id the provider was asked for
    logical_model: str  # what the caller asked for
    cost_usd: float
    cost_source: CostSource
    usage: dict[str, Any]
    attempts: tuple[Attempt, ...]
    streamed: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    usage_estimated: bool = False
    flags: tuple[Flag, ...] = field(default=())

    @property
    def text(self) -> str:
        choices = self.response.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")

    @property
    def failed_over(self) -> bool:
        """True when a provider before the one that answered failed or was skipped for its
        health, budget or readiness (not for being disabled, keyless or not allowed)."""
        return any(a.outcome is not Outcome.OK and not a.outcome.by_policy for a in self.attempts)

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


class Assembler:
    """Collects standard chunks into one chat.completion as OpenAI's schema has it: every choice
    with its ``logprobs`` and ``message.refusal`` (null when none), ``content`` null beside tool
    calls, and the upstream ``system_fingerprint``."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.fingerprint: str | None = None
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None
        self.completion_chars = 0

    def add(self, chunk: Mapping[str, Any]) -> None:
        """Merge one standard chunk (runs for every chunk of every answer)."""
        if not self.id:
            self.id = str(chunk.get("id", ""))
        if not self.model:
            self.model = str(chunk.get("model", ""))
        if not self.fingerprint:
            self.fingerprint = chunk.get("system_fingerprint")
        usage = chunk.get("usage")
        if usage and isinstance(usage, dict):
            self.usage = dict(usage)
        for choice in chunk.get("choices") or ():
            self._merge(choice)

    def _merge(self, choice: Mapping[str, Any]) -> None:
        index = int(choice.get("index", 0))
        slot = self.choices.get(index)
        if slot is None:
            slot = self.choices[index] = {
                "message": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None, "finish_reason": None}
        delta = choice.get("delta") or {}
        message = slot["message"]
        content = delta.get("content")
        if content:
            message["content"] += content
            self.completion_chars += len(content)
        if content is None or len(delta) > 1:  # more than text: role, refusal, tool calls...
            _merge_more(message, delta)
        if choice.get("logprobs"):
            slot["logprobs"] = _merge_logprobs(slot["logprobs"], choice["logprobs"])
        if finish := choice.get("finish_reason"):
            slot["finish_reason"] = finish

    def completion(self, usage: Mapping[str, Any]) -> dict[str, Any]:
        choices = [_final_choice(i, self.choices[i]) for i in sorted(self.choices)] or [
            {"index": 0, "message": {"role": "assistant", "content": "", "refusal": None},
             "logprobs": None, "finish_reason": "stop"}]
        body = {"id": self.id or "chatcmpl-exo-bridge", "object": "chat.completion",
                "created": self.created, "model": self.model, "choices": choices,
                "usage": dict(usage)}
        if self.fingerprint:
            body["system_fingerprint"] = self.fingerprint
        return body


# Text a delta may carry besides the answer (OpenAI's refusal; the reasoning some providers send).
_TEXT_EXTRAS = ("refusal", "reasoning_content", "reasoning")


def _merge_more(message: dict[str, Any], delta: Mapping[str, Any]) -> None:
    if delta.get("role"):
        message["role"] = delta["role"]
    for key in _TEXT_EXTRAS:
        if isinstance(delta.get(key), str):
            message[key] = (message.get(key) or "") + delta[key]
    for call in delta.get("tool_calls") or ():
        _merge_tool_call(message.setdefault("tool_calls", []), call)


def _final_choice(index: int, slot: dict[str, Any]) -> dict[str, Any]:
    message = slot["message"]
    if not message["content"] and (message.get("tool_calls") or message["refusal"]):
        message["content"] = None  # as OpenAI sends it beside tool calls or a refusal
    finish = slot["finish_reason"] or ("tool_calls" if message.get("tool_calls") else "stop")
    return {"index": index, "message": message, "logprobs": slot["logprobs"],
            "finish_reason": finish}


def _merge_logprobs(merged: dict[str, Any] | None, part: Mapping[str, Any]) -> dict[str, Any]:
    merged = merged or {"content": None, "refusal": None}
    for key in ("content", "refusal"):
        if part.get(key):
            merged[key] = [*(merged[key] or ()), *part[key]]
    return merged


def _merge_tool_call(calls: list[dict[str, Any]], part: Mapping[str, Any]) -> None:
    index = int(part.get("index", len(calls)))
    while len(calls) <= index:
        calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    call = calls[index]
    call["id"] = part.get("id") or call["id"]
    function = part.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


# -- an answer as people read it (the chat's footer, the assistant's test, ``ask``) ----------
def tokens_text(usage: Mapping[str, Any]) -> str:
    return f"{usage.get('prompt_tokens', 0)}+{usage.get('completion_tokens', 0)} tokens"


def cost_text(result: Result) -> str:
    """"free" on the user's own hardware, else what it cost."""
    return "free" if result.cost_source == CostSource.FREE else usd(result.cost_usd)


def footer_text(result: Result, name: str) -> str:
    """Who answered (``name``), a failover, tokens, cost, first token and time, on one line."""
    failover = " ↪ failover" if result.failed_over else ""
    ttft = f" · first token {result.ttft_ms:.0f} ms" if result.ttft_ms is not None else ""
    return (f"{name}{failover} · {tokens_text(result.usage)} · {cost_text(result)}{ttft} · "
            f"{result.latency_ms / 1000:.1f} s")
