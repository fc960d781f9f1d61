"""Chat completion chunks -> OpenAI Responses API: the stream's events and the Response object.

One builder serves both: it turns chat deltas into output items (a message with its text and
refusal parts, then function calls), emitting each Responses event as it goes; a non-streamed
answer is the same state fed the whole completion at once, so the items, their ids and their
order are the same either way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from router.endpoint.apis.common import chat_usage, new_id, sse
from router.endpoint.apis.responses_tools import Origin, custom_input

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ResponseBuilder:
    def __init__(self, request: Mapping[str, Any], origins: Mapping[str, Origin] | None = None):
        self._request = request
        self._origins = origins or {}  # chat function name -> the tool it stands for
        self.id = new_id("resp_")
        self.created_at = int(time.time())
        self.model = str(request.get("model") or "")
        self._seq = 0
        self._events: list[bytes] = []
        self._items: list[dict[str, Any]] = []
        self._message: dict[str, Any] | None = None  # the open message item
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> open call item
        self._raw: dict[str, str] = {}  # a custom tool call's item id -> its arguments so far
        self._finish: str | None = None
        self._started = False

    # -- the stream ------------------------------------------------------------------------
    def feed(self, chunks: Iterable[Mapping[str, Any]]) -> bytes:
        """The events for a batch of chat chunks (the opening ones with the first)."""
        for chunk in chunks:
            self.model = str(chunk.get("model") or self.model)
            if not self._started:
                self._started = True
                skeleton = self.response("in_progress")
                self._emit("response.created", response=skeleton)
                self._emit("response.in_progress", response=skeleton)
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) == 0:  # one answer per response
                    self._delta(choice.get("delta") or {})
                    self._finish = choice.get("finish_reason") or self._finish
        return self._flush()

    def finish(self, usage: Mapping[str, Any] | None) -> bytes:
        """Close what is open; ``response.completed`` (or ``.incomplete``) with the whole Response."""
        self._close_all()
        status = "incomplete" if self._finish in _INCOMPLETE else "completed"
        self._emit(f"response.{status}", response=self.response(status, usage))
        return self._flush()

    def fail(self, message: str, internal: bool = False) -> bytes:
        """The answer broke after it started: ``response.failed`` (never a clean completion)."""
        failed = self.response("failed")
        failed["error"] = {"code": "server_error", "message": message}
        self._emit("response.failed", response=failed)
        return self._flush()

    # -- a whole answer --------------------------------------------------------------------
    def answer(self, completion: Mapping[str, Any], usage: Mapping[str, Any]) -> dict[str, Any]:
        """The Response object for a whole chat.completion."""
        self.feed([{"model": completion.get("model"), "choices": [
            {"index": c.get("index", 0), "delta": _as_delta(c.get("message") or {}),
             "finish_reason": c.get("finish_reason")} for c in completion.get("choices") or ()]}])
        self.finish(usage)
        status = "incomplete" if self._finish in _INCOMPLETE else "completed"
        return self.response(status, usage)

    def response(self, status: str, usage: Mapping[str, Any] | None = None) -> dict[str, Any]:
        request = self._request
        body: dict[str, Any] = {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "error": None, "incomplete_details": None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"), "model": self.model,
            "output": [dict(item) for item in self._items] if status != "in_progress" else [],
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": None, "store": False,
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "text": request.get("text") or {"format": {"type": "text"}},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": [_echo_tool(t) for t in request.get("tools") or ()],
            "truncation": "disabled", "metadata": request.get("metadata") or {}}
        if request.get("user") is not None:
            body["user"] = request["user"]
        if status == "incomplete":
            body["incomplete_details"] = {"reason": _INCOMPLETE[self._finish or "length"]}
        if usage is not None:
            body["usage"] = _usage(usage)
        return body

    # -- items -----------------------------------------------------------------------------
    def _delta(self, delta: Mapping[str, Any]) -> None:
        if delta.get("content"):
            self._text_part("output_text", "text", str(delta["content"]))
        if delta.get("refusal"):
            self._text_part("refusal", "refusal", str(delta["refusal"]))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._call_part(call)

    def _text_part(self, kind: str, field: str, text: str) -> None:
        item = self._message or self._open_message()
        content = item["content"]
        index = next((i for i, p in enumerate(content) if p["type"] == kind), None)
        if index is None:
            part: dict[str, Any] = {"type": kind, field: ""}
            if kind == "output_text":
                part.update(annotations=[], logprobs=[])
            content.append(part)
            index = len(content) - 1
            self._emit("response.content_part.added", item_id=item["id"],
                       output_index=self._items.index(item), content_index=index, part=dict(part))
        content[index][field] += text
        event = "response.output_text.delta" if kind == "output_text" else "response.refusal.delta"
        extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
        self._emit(event, item_id=item["id"], output_index=self._items.index(item),
                   content_index=index, delta=text, **extra)

    def _open_message(self) -> dict[str, Any]:
        self._close_calls()
        item = {"type": "message", "id": new_id("msg_"), "status": "in_progress",
                "role": "assistant", "content": []}
        self._message = self._added(item)
        return item

    def _call_part(self, call: Mapping[str, Any]) -> None:
        index = int(call.get("index", len(self._calls)))
        function = call.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            self._close_message()
            item = self._added(self._call_item(str(function.get("name") or ""),
                                               call.get("id") or new_id("call_")))
            self._calls[index] = item
        elif function.get("name"):
            item["name"] += str(function["name"])
        if item["type"] == "custom_tool_call":  # its input is known once its arguments are whole
            self._raw[item["id"]] = self._raw.get(item["id"], "") + str(
                function.get("arguments") or "")
        elif function.get("arguments"):
            item["arguments"] += str(function["arguments"])
            self._emit("response.function_call_arguments.delta", item_id=item["id"],
                       output_index=self._items.index(item), delta=str(function["arguments"]))

    def _call_item(self, chat_name: str, call_id: str) -> dict[str, Any]:
        """A function_call item, or the custom_tool_call of a freeform tool; a namespaced
        tool's call names its namespace (router/endpoint/apis/responses_tools.py)."""
        origin = self._origins.get(chat_name)
        if origin is not None and origin.custom:
            item = {"type": "custom_tool_call", "id": new_id("ctc_"), "call_id": call_id,
                    "name": origin.name, "input": "", "status": "in_progress"}
        else:
            item = {"type": "function_call", "id": new_id("fc_"), "call_id": call_id,
                    "name": origin.name if origin is not None else chat_name, "arguments": "",
                    "status": "in_progress"}
        if origin is not None and origin.namespace is not None:
            item["namespace"] = origin.namespace
        return item

    def _added(self, item: dict[str, Any]) -> dict[str, Any]:
        self._items.append(item)
        self._emit("response.output_item.added", output_index=len(self._items) - 1,
                   item=json.loads(json.dumps(item)))
        return item

    def _close_all(self) -> None:
        self._close_message()
        self._close_calls()
        if not self._items:  # an empty answer is still one (empty) message
            self._text_part("output_text", "text", "")
            self._close_message()

    def _close_message(self) -> None:
        item, self._message = self._message, None
        if item is None:
            return
        at = self._items.index(item)
        for index, part in enumerate(item["content"]):
            if part["type"] == "output_text":
                self._emit("response.output_text.done", item_id=item["id"], output_index=at,
                           content_index=index, text=part["text"], logprobs=[])
            else:
                self._emit("response.refusal.done", item_id=item["id"], output_index=at,
                           content_index=index, refusal=part["refusal"])
            self._emit("response.content_part.done", item_id=item["id"], output_index=at,
                       content_index=index, part=dict(part))
        item["status"] = "incomplete" if self._finish in _INCOMPLETE else "completed"
        self._emit("response.output_item.done", output_index=at, item=json.loads(json.dumps(item)))

    def _close_calls(self) -> None:
        for index in list(self._calls):
            self._close_call(index)

    def _close_call(self, index: int) -> None:
        item = self._calls.pop(index)
        at = self._items.index(item)
        if item["type"] == "custom_tool_call":
            item["input"] = custom_input(self._raw.pop(item["id"], ""))
            if item["input"]:
                self._emit("response.custom_tool_call_input.delta", item_id=item["id"],
                           output_index=at, delta=item["input"])
            self._emit("response.custom_tool_call_input.done", item_id=item["id"],
                       output_index=at, input=item["input"])
        else:
            self._emit("response.function_call_arguments.done", item_id=item["id"],
                       output_index=at, name=item["name"], arguments=item["arguments"])
        item["status"] = "completed"
        self._emit("response.output_item.done", output_index=at, item=dict(item))

    def _emit(self, event: str, **fields: Any) -> None:
        self._events.append(sse(event, {"type": event, "sequence_number": self._seq, **fields}))
        self._seq += 1

    def _flush(self) -> bytes:
        out, self._events = b"".join(self._events), []
        return out


def _as_delta(message: Mapping[str, Any]) -> dict[str, Any]:
    """A whole message as one delta (its tool calls numbered as a stream numbers them)."""
    calls = [{**c, "index": i} for i, c in enumerate(message.get("tool_calls") or ())
             if isinstance(c, dict)]
    return {**message, "tool_calls": calls}


def _echo_tool(tool: Any) -> Any:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "function"):
        return tool
    return {"type": "function", "name": tool.get("name"), "description": tool.get("description"),
            "parameters": tool.get("parameters"), "strict": tool.get("strict")}


def _usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    prompt, completion, cached, reasoning = chat_usage(usage)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached,
                                                             "cache_write_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + completion}
