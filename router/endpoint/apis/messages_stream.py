"""Chat completion chunks -> Anthropic Messages API: the SSE event sequence (message_start,
content_block_start/delta/stop, message_delta, message_stop; ``error`` when an answer breaks)
and the Message object. One builder serves both, as for the Responses API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from router.endpoint.apis.common import chat_usage, new_id, parse_arguments, sse

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}


class MessageBuilder:
    def __init__(self, request: Mapping[str, Any], prompt_tokens_estimate: int = 0):
        self.id = new_id("msg_")
        self.model = str(request.get("model") or "")
        self._estimate = prompt_tokens_estimate
        self._events: list[bytes] = []
        self._blocks: list[dict[str, Any]] = []
        self._open: int | None = None  # index of the block being streamed
        self._calls: dict[int, int] = {}  # chat tool-call index -> block index
        self._json: dict[int, str] = {}  # block index -> tool input JSON so far
        self._finish: str | None = None
        self._refused = False
        self._started = False

    # -- the stream ------------------------------------------------------------------------
    def feed(self, chunks: Iterable[Mapping[str, Any]]) -> bytes:
        for chunk in chunks:
            self.model = str(chunk.get("model") or self.model)
            if not self._started:
                self._started = True
                self._emit("message_start", message=self._message(
                    [], None, {"input_tokens": self._estimate, "output_tokens": 0}))
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) == 0:
                    self._delta(choice.get("delta") or {})
                    self._finish = choice.get("finish_reason") or self._finish
        return self._flush()

    def finish(self, usage: Mapping[str, Any] | None) -> bytes:
        self._stop_block()
        if not self._blocks:  # an empty answer is still one (empty) text block
            self._start_block({"type": "text", "text": ""})
            self._stop_block()
        self._emit("message_delta", delta={"stop_reason": self.stop_reason(),
                                           "stop_sequence": None}, usage=_usage(usage))
        self._emit("message_stop")
        return self._flush()

    def fail(self, message: str, internal: bool = False) -> bytes:
        """The answer broke after it started: an ``error`` event, never a clean message_stop."""
        self._emit("error", error={"type": "api_error", "message": message})
        return self._flush()

    # -- a whole answer --------------------------------------------------------------------
    def answer(self, completion: Mapping[str, Any], usage: Mapping[str, Any]) -> dict[str, Any]:
        for choice in completion.get("choices") or ():
            message = dict(choice.get("message") or {})
            message["tool_calls"] = [{**c, "index": i} for i, c in
                                     enumerate(message.get("tool_calls") or ()) if isinstance(c, dict)]
            self.feed([{"model": completion.get("model"), "choices": [
                {"index": choice.get("index", 0), "delta": message,
                 "finish_reason": choice.get("finish_reason")}]}])
        self.finish(usage)
        return self._message(self.content(), self.stop_reason(), _usage(usage))

    def content(self) -> list[dict[str, Any]]:
        """The blocks as a Message holds them (a tool's input parsed from its JSON)."""
        blocks = []
        for index, block in enumerate(self._blocks):
            if block["type"] == "tool_use":
                block = {**block, "input": parse_arguments(self._json.get(index, ""))}
            blocks.append(block)
        return blocks

    def stop_reason(self) -> str:
        if self._refused:
            return "refusal"
        return STOP_REASONS.get(self._finish or "stop", "end_turn")

    def _message(self, content: list[dict[str, Any]], stop_reason: str | None,
                 usage: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": usage}

    # -- blocks ----------------------------------------------------------------------------
    def _delta(self, delta: Mapping[str, Any]) -> None:
        text = str(delta.get("content") or "")
        if delta.get("refusal"):
            self._refused = True
            text += str(delta["refusal"])
        if text:
            self._text(text)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._tool(call)

    def _text(self, text: str) -> None:
        if self._open is None or self._blocks[self._open]["type"] != "text":
            self._stop_block()
            self._start_block({"type": "text", "text": ""})
        assert self._open is not None
        self._blocks[self._open]["text"] += text
        self._emit("content_block_delta", index=self._open,
                   delta={"type": "text_delta", "text": text})

    def _tool(self, call: Mapping[str, Any]) -> None:
        index = int(call.get("index", len(self._calls)))
        function = call.get("function") or {}
        if index not in self._calls:
            self._stop_block()
            self._start_block({"type": "tool_use", "id": call.get("id") or new_id("toolu_"),
                               "name": str(function.get("name") or ""), "input": {}})
            assert self._open is not None
            self._calls[index] = self._open
        block = self._calls[index]
        arguments = str(function.get("arguments") or "")
        if arguments:
            self._json[block] = self._json.get(block, "") + arguments
            self._emit("content_block_delta", index=block,
                       delta={"type": "input_json_delta", "partial_json": arguments})

    def _start_block(self, block: dict[str, Any]) -> None:
        self._blocks.append(block)
        self._open = len(self._blocks) - 1
        self._emit("content_block_start", index=self._open, content_block=dict(block))

    def _stop_block(self) -> None:
        if self._open is not None:
            self._emit("content_block_stop", index=self._open)
            self._open = None

    def _emit(self, event: str, **fields: Any) -> None:
        self._events.append(sse(event, {"type": event, **fields}))

    def _flush(self) -> bytes:
        out, self._events = b"".join(self._events), []
        return out


def _usage(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    prompt, completion, cached, _ = chat_usage(usage)
    return {"input_tokens": prompt - cached, "output_tokens": completion,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    return {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
            429: "rate_limit_error", 504: "timeout_error", 529: "overloaded_error"}.get(
        status, "api_error" if status >= 500 else "invalid_request_error")
