"""Anthropic Messages API request -> chat completions request: system (and system entries inside
messages, kept in place), text and image blocks,
tools, tool_use and tool_result blocks, max_tokens, stop_sequences, sampling. Server tools and
documents are a 400 that names them; thinking and effort settings are left to the model's
defaults."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from router.endpoint.apis.common import (
    Unmappable,
    expect,
    optional_bool,
    optional_model,
    optional_number,
    type_tag,
)

_REFUSED = {
    "mcp_servers": "MCP servers are called by Anthropic's servers; not available here",
    "container": "code-execution containers run on Anthropic's servers; not available here",
}
MAX_TOP_K = 1_000_000  # Anthropic sets none; no vocabulary is larger
_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat completions request that asks the same (raises Unmappable)."""
    for name, why in _REFUSED.items():
        if body.get(name):
            raise Unmappable(f"'{name}' is not supported: {why}", name)
    limit = body.get("max_tokens")
    expect(isinstance(limit, int) and not isinstance(limit, bool) and limit > 0,
           "'max_tokens' is required and must be a positive integer", "max_tokens")
    optional_number(body, "temperature", 0, 1)  # Anthropic's ranges
    optional_number(body, "top_p", 0, 1)
    optional_number(body, "top_k", 0, MAX_TOP_K)
    optional_bool(body, "stream")
    optional_model(body)
    chat: dict[str, Any] = {"max_tokens": limit}
    for source, target in (("model", "model"), ("temperature", "temperature"),
                           ("top_p", "top_p"), ("top_k", "top_k"), ("stop_sequences", "stop")):
        if body.get(source) is not None:
            chat[target] = body[source]
    chat["messages"] = _system(body.get("system")) + _messages(body.get("messages"))
    user = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) \
        else None
    if isinstance(user, str):
        chat["user"] = user
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat.update(_tool_choice(body["tool_choice"]))
    response_format = _output_format(body.get("output_config"))
    if response_format is not None:
        chat["response_format"] = response_format
    return chat


def _output_format(config: Any) -> dict[str, Any] | None:
    """Structured output (``output_config.format``) as chat's ``response_format``."""
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        return None
    expect(isinstance(fmt, dict) and fmt.get("type") == "json_schema"
           and isinstance(fmt.get("schema"), dict),
           "'output_config.format' must be {type: json_schema, schema}", "output_config.format")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    expect(isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text"
                                            and isinstance(b.get("text"), str) for b in system),
           "'system' must be a string or a list of text blocks", "system")
    return [{"role": "system", "content": "\n".join(b["text"] for b in system)}]


def _system_entry(content: Any, where: str) -> dict[str, Any]:
    """A ``{"role": "system"}`` entry inside ``messages`` (Claude Code sends them: its agent and
    skill lists) as a system message at the same place."""
    if isinstance(content, str):
        return {"role": "system", "content": content}
    expect(isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in content), f"{where}.content of a system entry must be a string or a list of "
           "text blocks", f"{where}.content")
    return {"role": "system", "content": "\n".join(b["text"] for b in content)}


def _messages(messages: Any) -> list[dict[str, Any]]:
    expect(isinstance(messages, list) and bool(messages), "'messages' must be a non-empty list",
           "messages")
    chat: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        expect(isinstance(message, dict) and message.get("role") in ("user", "assistant", "system"),
               f"{where} must be an object whose role is user, assistant or system",
               f"{where}.role")
        content = message.get("content")
        if message["role"] == "system":  # Claude Code's reminders, kept where they were said
            chat.append(_system_entry(content, where))
            continue
        if isinstance(content, str):
            chat.append({"role": message["role"], "content": content})
            continue
        expect(isinstance(content, list), f"{where}.content must be a string or a list of blocks",
               f"{where}.content")
        blocks = [_block(b, f"{where}.content[{i}]") for i, b in enumerate(content)]
        if message["role"] == "assistant":
            chat.append(_assistant(blocks))
        else:
            chat.extend(_user(blocks))
    return chat


def _block(block: Any, where: str) -> dict[str, Any]:
    """A content block as a chat part (text, image_url), tool call or tool message."""
    expect(isinstance(block, dict), f"{where} must be an object", where)
    kind = type_tag(block, where)
    if kind == "text":
        expect(isinstance(block.get("text"), str), f"{where}.text must be a string", f"{where}.text")
        return {"type": "text", "text": block["text"]}
    if kind == "image":
        return _image(block.get("source"), where)
    if kind == "tool_use":
        expect(isinstance(block.get("id"), str) and isinstance(block.get("name"), str),
               f"{where}: tool_use needs an id and a name", where)
        return {"type": "tool_call", "id": block["id"], "function": {
            "name": block["name"], "arguments": json.dumps(block.get("input") or {})}}
    if kind == "tool_result":
        expect(isinstance(block.get("tool_use_id"), str), f"{where}.tool_use_id must be a string",
               f"{where}.tool_use_id")
        return {"type": "tool_result", "id": block["tool_use_id"],
                "parts": _result_parts(block.get("content"), where)}
    if kind in ("thinking", "redacted_thinking"):
        return {"type": "skip"}  # a model's own reasoning, sent back: nothing to answer
    raise Unmappable(f"{where}: content blocks of type {kind!r} are not supported here (only "
                     "text, image, tool_use and tool_result)", f"{where}.type")


def _image(source: Any, where: str) -> dict[str, Any]:
    expect(isinstance(source, dict), f"{where}.source must be an object", f"{where}.source")
    kind = type_tag(source, f"{where}.source")
    if kind == "base64":
        expect(isinstance(source.get("data"), str) and isinstance(source.get("media_type"), str),
               f"{where}.source needs media_type and data", f"{where}.source")
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise Unmappable(f"{where}.source must be base64 or url (uploaded files are not "
                         "supported here)", f"{where}.source")
    return {"type": "image_url", "image_url": {"url": url}}


def _result_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    expect(isinstance(content, list), f"{where}.content must be a string or a list of blocks",
           f"{where}.content")
    parts = [_block(b, f"{where}.content[{i}]") for i, b in enumerate(content)]
    expect(all(p["type"] in ("text", "image_url") for p in parts),
           f"{where}.content may hold only text and image blocks", f"{where}.content")
    return parts


def _assistant(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    calls = [{"id": b["id"], "type": "function", "function": b["function"]}
             for b in blocks if b["type"] == "tool_call"]
    expect(all(b["type"] in ("text", "tool_call", "skip") for b in blocks),
           "assistant messages hold text and tool_use blocks only", "messages")
    if calls:
        return {"role": "assistant", "content": text or None, "tool_calls": calls}
    return {"role": "assistant", "content": text}


def _user(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool results first (as tool messages, in order), then what the user says besides; an
    image in a tool result reaches the model in a user message after them."""
    expect(all(b["type"] != "tool_call" for b in blocks), "tool_use blocks belong to assistant "
           "messages", "messages")
    messages: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for block in blocks:
        if block["type"] == "tool_result":
            text = "".join(p["text"] for p in block["parts"] if p["type"] == "text")
            messages.append({"role": "tool", "tool_call_id": block["id"], "content": text})
            images += [p for p in block["parts"] if p["type"] == "image_url"]
    parts = images + [b for b in blocks if b["type"] in ("text", "image_url")]
    if parts or not messages:
        messages.append({"role": "user", "content": _content(parts)})
    return messages


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _tools(tools: Any) -> list[dict[str, Any]]:
    expect(isinstance(tools, list), "'tools' must be a list", "tools")
    chat = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        expect(isinstance(tool, dict), f"{where} must be an object", where)
        kind = type_tag(tool, where)
        if kind not in (None, "custom"):
            raise Unmappable(f"{where}: the server tool {kind!r} runs on Anthropic's "
                             "servers and is not available here; only custom tools are",
                             f"{where}.type")
        expect(isinstance(tool.get("name"), str) and isinstance(tool.get("input_schema"), dict),
               f"{where} needs a name and an input_schema", where)
        function = {"name": tool["name"], "parameters": tool["input_schema"]}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        chat.append({"type": "function", "function": function})
    return chat


def _tool_choice(choice: Any) -> dict[str, Any]:
    expect(isinstance(choice, dict), "'tool_choice' must be an object", "tool_choice")
    kind = type_tag(choice, "tool_choice")
    if kind in _TOOL_CHOICE:
        mapped: dict[str, Any] = {"tool_choice": _TOOL_CHOICE[kind]}
    elif kind == "tool" and isinstance(choice.get("name"), str):
        mapped = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise Unmappable("'tool_choice' must be auto, any, none or {type: tool, name}",
                         "tool_choice")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        mapped["parallel_tool_calls"] = False
    return mapped
