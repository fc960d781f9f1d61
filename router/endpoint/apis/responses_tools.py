"""The Responses API's tools as chat completions functions, and the way back.

- ``function`` tools are functions.
- ``namespace`` tools (``{"type": "namespace", "name", "tools": [...]}``, Codex's multi-agent
  tools) are flattened: each tool inside is a function of its own, named as it is unless that
  name is taken, then ``<namespace>__<name>``; its calls go back as ``function_call`` items that
  carry the ``namespace``.
- ``custom`` tools (freeform, ``{"type": "custom", "name", "format": {"type": "grammar", ...}}``,
  Codex's ``apply_patch``) are functions taking one string, ``input`` (the grammar said in the
  description); their calls go back as ``custom_tool_call`` items with that string.
- Hosted tools that run on OpenAI's servers (``web_search``, ``file_search``, ...) and tools whose
  calls need OpenAI's own item types (``local_shell``, ``tool_search``) are dropped: the model
  answers without them, and the endpoint names them in the ``x-exo-bridge-dropped-tools`` header.

``additional_tools`` input items (tools offered in the conversation itself) add their tools the
same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from router.endpoint.apis.common import Unmappable, expect, type_tag

DROPPED_TOOLS_HEADER = "x-exo-bridge-dropped-tools"
# Tools a chat completions model cannot be given: they run on OpenAI's servers, or their calls
# are items of OpenAI's own (local_shell_call, tool_search_call) that no chat model produces.
HOSTED = frozenset({
    "web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26",
    "file_search", "code_interpreter", "image_generation", "computer_use_preview",
    "computer_use", "computer", "mcp", "local_shell", "shell", "apply_patch", "tool_search"})
CUSTOM_INPUT = "input"  # the one string argument of a custom tool, as a function


@dataclass(frozen=True)
class Origin:
    """What a chat function stands for: its name, its namespace, a custom (freeform) tool."""
    name: str
    namespace: str | None = None
    custom: bool = False


@dataclass
class ToolSet:
    functions: list[dict[str, Any]]  # chat tools
    origins: dict[str, Origin]  # chat function name -> the tool it stands for
    dropped: list[str]  # the types of the tools dropped, in order, once each

    def chat_name(self, name: str, namespace: str | None = None) -> str:
        """The chat function name of a (namespaced) tool: the one offered under that name and
        namespace, else the only one offered under that name, else the name itself."""
        named = [chat for chat, origin in self.origins.items() if origin.name == name]
        exact = [chat for chat in named if self.origins[chat].namespace == (namespace or None)]
        if exact:
            return exact[0]
        return named[0] if len(named) == 1 else name


def tool_set(body: Mapping[str, Any]) -> ToolSet:
    """The request's tools, ``tools`` and those of its ``additional_tools`` items (raises
    Unmappable naming a malformed one)."""
    found: list[tuple[dict[str, Any], str]] = []
    tools = body.get("tools")
    if tools is not None:
        expect(isinstance(tools, list), "'tools' must be a list", "tools")
        found += [(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    items = body.get("input")
    for index, item in enumerate(items if isinstance(items, list) else ()):
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            where = f"input[{index}].tools"
            extra: list[Any] = item.get("tools")  # type: ignore[assignment]  # checked here
            expect(isinstance(extra, list), f"{where} must be a list", where)
            found += [(tool, f"{where}[{i}]") for i, tool in enumerate(extra)]
    return _build(found)


def _build(found: Iterable[tuple[Any, str]]) -> ToolSet:
    entries: list[tuple[Origin, dict[str, Any]]] = []  # (origin, function without its name)
    dropped: list[str] = []
    for tool, where in found:
        expect(isinstance(tool, dict), f"{where} must be an object", where)
        kind = type_tag(tool, where)
        if kind == "namespace":
            entries += _namespace(tool, where)
        elif kind in ("function", "custom"):
            entries.append(_entry(tool, where, None))
        elif isinstance(kind, str) and kind in HOSTED:
            if kind not in dropped:
                dropped.append(kind)
        else:
            raise Unmappable(f"{where}: tools of type {kind!r} are not supported here (only "
                             "function, custom and namespace; hosted tools are dropped)",
                             f"{where}.type")
    taken = [origin.name for origin, _ in entries]
    functions: list[dict[str, Any]] = []
    origins: dict[str, Origin] = {}
    for origin, function in entries:
        name = origin.name
        if origin.namespace is not None and (taken.count(name) > 1 or name in origins):
            name = f"{origin.namespace}__{origin.name}"
        if name in origins:  # the same tool offered twice: once is enough
            continue
        origins[name] = origin
        functions.append({"type": "function", "function": {"name": name, **function}})
    return ToolSet(functions, origins, dropped)


def _namespace(tool: Mapping[str, Any], where: str) -> list[tuple[Origin, dict[str, Any]]]:
    name, inner = tool.get("name"), tool.get("tools") or []
    expect(isinstance(name, str) and bool(name), f"{where}.name must be a string", f"{where}.name")
    expect(isinstance(inner, list), f"{where}.tools must be a list", f"{where}.tools")
    entries = []
    for index, member in enumerate(inner):
        here = f"{where}.tools[{index}]"
        expect(isinstance(member, dict) and member.get("type") in ("function", "custom"),
               f"{here} must be a function or custom tool", f"{here}.type")
        entries.append(_entry(member, here, str(name)))
    return entries


def _entry(tool: Mapping[str, Any], where: str,
           namespace: str | None) -> tuple[Origin, dict[str, Any]]:
    expect(isinstance(tool.get("name"), str) and bool(tool["name"]),
           f"{where}.name must be a string", f"{where}.name")
    custom = tool.get("type") == "custom"
    function: dict[str, Any] = {}
    if custom:
        function["description"] = _custom_description(tool)
        function["parameters"] = {
            "type": "object", "properties": {CUSTOM_INPUT: {
                "type": "string", "description": "the tool's whole input, as its format says"}},
            "required": [CUSTOM_INPUT], "additionalProperties": False}
    else:
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
    return Origin(tool["name"], namespace, custom), function


def _custom_description(tool: Mapping[str, Any]) -> str:
    text = str(tool.get("description") or "")
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar":
        syntax = fmt.get("syntax") or "grammar"
        text += (f"\n\nPass the whole input as the string argument '{CUSTOM_INPUT}'. It must "
                 f"follow this {syntax} grammar:\n{fmt.get('definition', '')}")
    else:
        text += f"\n\nPass the whole input as the string argument '{CUSTOM_INPUT}' (free text)."
    return text.strip()


def custom_input(arguments: str) -> str:
    """A custom tool's input from the arguments a chat model gave its function (the text itself
    when the model sent no JSON object with the one string)."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get(CUSTOM_INPUT), str):
        return str(parsed[CUSTOM_INPUT])
    return arguments


def custom_arguments(text: str) -> str:
    """A custom tool call's input as its function's arguments."""
    return json.dumps({CUSTOM_INPUT: text})
