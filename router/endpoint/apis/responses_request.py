"""OpenAI Responses API request -> chat completions request: the subset that maps (text and image
input, instructions, function, namespace and freeform tools and their calls and outputs,
max_output_tokens, text formats; the tools are router/endpoint/apis/responses_tools.py's). What needs
OpenAI's servers (stored state, background runs, uploaded files) is a 400 that names it; hosted
tools are dropped (and named in a header by the route)."""

from __future__ import annotations

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
from router.endpoint.apis.responses_tools import ToolSet, custom_arguments, tool_set

# Fields that need server-side state or execution: refused when set.
_STATEFUL = {
    "previous_response_id": "previous_response_id needs responses stored on the server; this "
                            "endpoint keeps none: send the whole conversation in 'input'",
    "conversation": "conversations are stored on OpenAI's servers; send the whole conversation "
                    "in 'input'",
    "background": "background responses need server-side storage; use stream or wait",
    "prompt": "reusable prompts live on OpenAI's servers; send the text in 'instructions'",
}
# Passed on as they are.
_COPIED = ("model", "temperature", "top_p", "parallel_tool_calls", "user")
_TEXT_PARTS = {"input_text", "output_text", "text"}


def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat completions request that asks the same (raises Unmappable)."""
    for name, why in _STATEFUL.items():
        if body.get(name):
            raise Unmappable(f"'{name}' is not supported: {why}", name)
    optional_number(body, "temperature", 0, 2)  # OpenAI's ranges
    optional_number(body, "top_p", 0, 1)
    optional_bool(body, "stream")
    optional_model(body)
    chat: dict[str, Any] = {k: body[k] for k in _COPIED if body.get(k) is not None}
    tools = tool_set(body)  # namespaces flattened, custom tools as functions, hosted dropped
    chat["messages"] = _instructions(body.get("instructions")) + _input(body.get("input"), tools)
    if body.get("max_output_tokens") is not None:
        limit = body["max_output_tokens"]
        expect(isinstance(limit, int) and not isinstance(limit, bool) and limit > 0,
               "'max_output_tokens' must be a positive integer", "max_output_tokens")
        chat["max_tokens"] = limit
    if tools.functions:
        chat["tools"] = tools.functions
    if body.get("tool_choice") is not None:
        choice = _tool_choice(body["tool_choice"], tools)
        if tools.functions or choice == "none":  # no tool left to choose: the model answers
            chat["tool_choice"] = choice
    response_format = _text_format(body.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    return chat


def _instructions(instructions: Any) -> list[dict[str, Any]]:
    if instructions is None:
        return []
    expect(isinstance(instructions, str), "'instructions' must be a string", "instructions")
    return [{"role": "system", "content": instructions}]


def _input(value: Any, tools: ToolSet) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    expect(isinstance(value, list) and bool(value), "'input' must be a string or a non-empty list "
           "of input items", "input")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        expect(isinstance(item, dict), f"input[{index}] must be an object", f"input[{index}]")
        _add_item(messages, item, f"input[{index}]", tools)
    expect(bool(messages), "'input' has no message to answer", "input")
    return messages


def _add_item(messages: list[dict[str, Any]], item: Mapping[str, Any], where: str,
              tools: ToolSet) -> None:
    kind = type_tag(item, where) if "type" in item else ("message" if "role" in item else None)
    if kind == "message":
        messages.append(_message(item, where))
    elif kind == "function_call":
        for field in ("call_id", "name", "arguments"):
            expect(isinstance(item.get(field), str), f"{where}.{field} must be a string",
                   f"{where}.{field}")
        _add_call(messages, item["call_id"], tools.chat_name(item["name"], _namespace(item)),
                  item["arguments"])
    elif kind == "custom_tool_call":  # a freeform tool's call, sent back: its function's call
        for field in ("call_id", "name", "input"):
            expect(isinstance(item.get(field), str), f"{where}.{field} must be a string",
                   f"{where}.{field}")
        _add_call(messages, item["call_id"], tools.chat_name(item["name"], _namespace(item)),
                  custom_arguments(item["input"]))
    elif kind == "additional_tools":
        return  # its tools are offered with the others (router/endpoint/apis/responses_tools.py)
    elif kind in ("function_call_output", "custom_tool_call_output"):
        expect(isinstance(item.get("call_id"), str), f"{where}.call_id must be a string",
               f"{where}.call_id")
        messages.append({"role": "tool", "tool_call_id": item["call_id"],
                         "content": _output_text(item.get("output"), where)})
    elif kind == "reasoning":
        return  # a model's own reasoning, echoed back: nothing for the next model to read
    elif kind == "item_reference":
        raise Unmappable(f"{where}: item_reference needs items stored on the server; send the "
                         "item itself", f"{where}.type")
    else:
        raise Unmappable(f"{where}: input items of type {kind!r} are not supported here (only "
                         "message, function_call, function_call_output, custom_tool_call, "
                         "custom_tool_call_output, additional_tools, reasoning)", f"{where}.type")


def _namespace(item: Mapping[str, Any]) -> str | None:
    """The namespace a call sent back names (its tool was in a namespace tool), if any."""
    namespace = item.get("namespace")
    return namespace if isinstance(namespace, str) and namespace else None


def _message(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    expect(role in ("user", "assistant", "system", "developer"),
           f"{where}.role must be user, assistant, system or developer", f"{where}.role")
    content = item.get("content")
    # developer instructions go to providers as system ones, which every chat server knows
    chat_role = "system" if role == "developer" else role
    if isinstance(content, str):
        return {"role": chat_role, "content": content}
    if not isinstance(content, list):
        raise Unmappable(f"{where}.content must be a string or a list of parts", f"{where}.content")
    parts = [_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return {"role": chat_role, "content": "".join(p["text"] for p in parts)}
    expect(chat_role == "user", f"{where}: images are only taken from user messages",
           f"{where}.content")
    return {"role": chat_role, "content": parts}


def _part(part: Any, where: str) -> dict[str, Any]:
    expect(isinstance(part, dict), f"{where} must be an object", where)
    kind = type_tag(part, where)
    if kind in _TEXT_PARTS:
        expect(isinstance(part.get("text"), str), f"{where}.text must be a string", f"{where}.text")
        return {"type": "text", "text": part["text"]}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image":
        url = part.get("image_url")
        expect(isinstance(url, str) and bool(url), f"{where}: input_image needs an image_url (a "
               "URL or a data: URL); uploaded files (file_id) are not supported here", where)
        image: dict[str, Any] = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise Unmappable(f"{where}: content parts of type {kind!r} are not supported here (only "
                     "input_text and input_image)", f"{where}.type")


def _add_call(messages: list[dict[str, Any]], call_id: str, name: str, arguments: str) -> None:
    call = {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and "tool_calls" in last:
        last["tool_calls"].append(call)
    elif last is not None and last["role"] == "assistant" and isinstance(last.get("content"), str):
        last["tool_calls"] = [call]  # the text a model said before calling, then its calls
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _output_text(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    expect(isinstance(output, list), f"{where}.output must be a string or a list of parts",
           f"{where}.output")
    parts = [_part(part, f"{where}.output[{i}]") for i, part in enumerate(output)]
    expect(all(p["type"] == "text" for p in parts), f"{where}.output: only text goes back to a "
           "model as a function call's output", f"{where}.output")
    return "".join(p["text"] for p in parts)


def _tool_choice(choice: Any, tools: ToolSet) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and type_tag(choice, "tool_choice") in ("function", "custom") \
            and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": tools.chat_name(choice["name"])}}
    raise Unmappable("'tool_choice' must be auto, none, required or a function "
                     "({type: function, name}); built-in and allowed-tools choices are not "
                     "supported here", "tool_choice")


def _text_format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    expect(isinstance(text, dict), "'text' must be an object", "text")
    fmt = text.get("format")
    if fmt is None:
        return None
    expect(isinstance(fmt, dict), "'text.format' must be an object", "text.format")
    kind = type_tag(fmt, "text.format")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        expect(isinstance(fmt.get("name"), str) and isinstance(fmt.get("schema"), dict),
               "'text.format' json_schema needs a name and a schema", "text.format")
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise Unmappable(f"'text.format' of type {kind!r} is not supported",
                     "text.format.type")
