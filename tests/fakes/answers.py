"""What a fake provider answers — text, a refusal or tool calls, with logprobs when the request
asks for them — as each provider streams it: exo sends its tool calls whole in one chunk and its
logprob tokens without ``bytes`` (and no ``refusal`` list); the others stream OpenAI's way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

Delta = tuple[dict[str, Any], dict[str, Any] | None]  # (delta, logprobs)


@dataclass
class Answer:
    reply: str
    tool_calls: list[tuple[str, str]] | None = None  # (name, JSON arguments)
    refusal: str | None = None
    thinking: str | None = None  # streamed first, as reasoning (exo: ``reasoning_content``)

    @property
    def finish(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    def deltas(self, flavor: str, logprobs: bool) -> list[Delta]:
        if self.tool_calls:
            return self._call_deltas(flavor)
        if self.refusal:
            return [({"refusal": w + " "}, None) for w in self.refusal.split(" ")]
        return [*self._thinking_deltas(flavor),
                *(({"content": w + " "}, _logprobs(flavor, w + " ") if logprobs else None)
                  for w in self.reply.split(" "))]

    def _thinking_deltas(self, flavor: str) -> list[Delta]:
        key = "reasoning" if flavor == "openrouter" else "reasoning_content"
        extra = {"role": "assistant"} if flavor == "exo" else {}  # exo: role in every delta
        return [({**extra, key: w + " "}, None) for w in (self.thinking or "").split(" ") if w]

    def _call_deltas(self, flavor: str) -> list[Delta]:
        calls = [{"index": i, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                  "function": {"name": name, "arguments": args}}
                 for i, (name, args) in enumerate(self.tool_calls or ())]
        if flavor == "exo":
            return [({"role": "assistant", "tool_calls": calls}, None)]
        deltas: list[Delta] = []
        for call in calls:
            args = call["function"]["arguments"]
            half = len(args) // 2
            deltas.append(({"tool_calls": [{**call, "function": {**call["function"], "arguments": ""}}]},
                           None))
            for piece in (args[:half], args[half:]):
                deltas.append(({"tool_calls": [{"index": call["index"],
                                                "function": {"arguments": piece}}]}, None))
        return deltas

    def message(self, flavor: str, logprobs: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The whole answer as a non-streamed message, and its logprobs."""
        deltas = self.deltas(flavor, logprobs)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if self.tool_calls:
            message["tool_calls"] = [{"id": f"call_{i}", "type": "function",
                                      "function": {"name": n, "arguments": a}}
                                     for i, (n, a) in enumerate(self.tool_calls)]
        elif self.refusal:
            message["refusal"] = self.refusal + " "
        else:
            message["content"] = "".join(d.get("content", "") for d, _ in deltas)
            if self.thinking:
                message["reasoning_content"] = self.thinking
        tokens = [t for _, lp in deltas if lp for t in lp["content"]]
        return message, ({"content": tokens, "refusal": None} if tokens else None)


def _logprobs(flavor: str, token: str) -> dict[str, Any]:
    if flavor == "exo":
        return {"content": [{"token": token, "logprob": -0.25, "top_logprobs": []}]}
    top = [{"token": token, "logprob": -0.25, "bytes": list(token.encode())}]
    return {"content": [{"token": token, "logprob": -0.25, "bytes": list(token.encode()),
                         "top_logprobs": top}], "refusal": None}
