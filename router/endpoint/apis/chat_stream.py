"""Chat completions answered as they came: the identity translation's builder. Each chunk is one
SSE event (the usage-only chunk when the caller asked for ``stream_options.include_usage``),
then ``data: [DONE]``; a break after the first token is an error chunk and no [DONE]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router import jsonio
from router.endpoint.answers import error_body


def event(data: Mapping[str, Any]) -> bytes:
    return b"data: " + jsonio.dumps(data) + b"\n\n"


class ChatBuilder:
    __slots__ = ("include_usage",)

    def __init__(self, request: Mapping[str, Any]):
        options = request.get("stream_options")
        self.include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False

    def feed(self, chunks: list[dict[str, Any]]) -> bytes:
        include_usage = self.include_usage
        return b"".join([event(chunk) for chunk in chunks if chunk["choices"] or include_usage])

    def finish(self, usage: Mapping[str, Any] | None) -> bytes:
        return b"data: [DONE]\n\n"

    def fail(self, message: str, internal: bool = False) -> bytes:
        """``internal``: the break is a defect of ours, not the provider's cut."""
        return event(error_body(message, "server_error", "internal_error" if internal else "stream_cut"))

    def answer(self, completion: Mapping[str, Any], usage: Mapping[str, Any]) -> Mapping[str, Any]:
        return completion  # the provider's answer as it is (usage already normalised)
